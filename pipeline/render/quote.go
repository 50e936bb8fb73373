package render

import "strings"

// shellWord quotes s, a string of the pipeline, as one POSIX shell word in which each
// variable reference is expanded by the shell as the pipeline would, into one word whatever its
// value, and nothing else is: no other $, backquote, glob, space or quote in s means anything
// to the shell. $$ in s is a literal $.
func shellWord(s string) string {
	pieces := words(s)
	if !hasRefs(pieces) {
		return quoteLiteral(literal(pieces))
	}
	var b strings.Builder
	b.WriteByte('"')
	writeShellRefs(&b, pieces, writeDoubleQuoted)
	b.WriteByte('"')
	return b.String()
}

// quoteLiteral quotes literal text as one shell word: as is when nothing in it is special,
// in single quotes otherwise.
func quoteLiteral(s string) string {
	if s == "" {
		return "''"
	}
	if strings.Trim(s, shellSafe) == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// shellSafe are the bytes that need no quoting in a shell word.
const shellSafe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-"

// writeDoubleQuoted writes literal text for the inside of a double-quoted shell word: there
// only $, `, " and \ are special, and a backslash makes each literal.
func writeDoubleQuoted(b *strings.Builder, lit string) {
	for _, r := range lit {
		if strings.ContainsRune("$`\"\\", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
}

// shellJoin quotes each word with shellWord and joins them into one command line.
func shellJoin(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = shellWord(w)
	}
	return strings.Join(q, " ")
}

// groovyString quotes s as a Groovy string literal that Groovy does not interpolate: single
// quotes, or triple single quotes when s spans lines. ${NAME} thus reaches the shell of an sh
// step as written, and the shell expands it from the build's environment.
func groovyString(s string) string {
	esc := strings.ReplaceAll(s, `\`, `\\`)
	if strings.Contains(s, "\n") {
		// Inside ''' only a run of three quotes would end the string; escape every quote.
		return "'''" + strings.ReplaceAll(esc, "'", `\'`) + "'''"
	}
	return "'" + strings.ReplaceAll(esc, "'", `\'`) + "'"
}
