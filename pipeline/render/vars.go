package render

import (
	"maps"
	"slices"
	"strings"

	"github.com/kilnbuild/kiln/pipeline/spec"
)

// piece is part of a pipeline string: literal text, or a variable reference in the pipeline
// file's syntax (spec.Pipeline.Expand): ${NAME}, $NAME, ${NAME:-word}, ${NAME:+word}; $$ is a
// literal $. Each target writes the pieces in its own syntax, so that its shell or Kubernetes
// fills in what `pipeline run` would.
type piece struct {
	text string  // the literal text, when name is ""
	name string  // the variable
	op   string  // "", ":-" (default) or ":+" (alternative)
	word []piece // the default or alternative
}

func (p piece) isRef() bool { return p.name != "" }

// parseRefs splits s into pieces, as spec's expansion reads it. What is not a valid
// reference (the pipeline's parser rejects those) stays literal text.
func parseRefs(s string) []piece {
	var out []piece
	lit := func(t string) {
		if n := len(out); n > 0 && !out[n-1].isRef() {
			out[n-1].text += t
			return
		}
		out = append(out, piece{text: t})
	}
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			if s != "" {
				lit(s)
			}
			return out
		}
		if i > 0 {
			lit(s[:i])
		}
		s = s[i:]
		switch {
		case strings.HasPrefix(s, "$$"):
			lit("$")
			s = s[2:]
		case strings.HasPrefix(s, "${"):
			ref, n := braced(s)
			if n == 0 {
				lit(s)
				return out
			}
			out = append(out, ref)
			s = s[n:]
		default:
			n := nameLen(s[1:])
			if n == 0 {
				lit("$")
				s = s[1:]
				continue
			}
			out = append(out, piece{name: s[1 : 1+n]})
			s = s[1+n:]
		}
	}
}

// braced reads the ${...} reference s starts with; n is its length, 0 if it is not one.
func braced(s string) (p piece, n int) {
	end := closingBrace(s)
	if end < 0 {
		return piece{}, 0
	}
	body := s[2:end]
	l := nameLen(body)
	p.name, p.op = body[:l], body[l:]
	if strings.HasPrefix(p.op, ":-") || strings.HasPrefix(p.op, ":+") {
		p.word = parseRefs(p.op[2:])
		p.op = p.op[:2]
	}
	if l == 0 || (p.op != "" && p.op != ":-" && p.op != ":+") {
		return piece{}, 0
	}
	return p, end + 1
}

// closingBrace is the index of the } closing the ${ s starts with, or -1.
func closingBrace(s string) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "$$"):
			i++
		case strings.HasPrefix(s[i:], "${"):
			depth++
			i++
		case s[i] == '}':
			if depth--; depth == 0 {
				return i
			}
		}
	}
	return -1
}

// nameLen is the length of the variable name s starts with (0 if none).
func nameLen(s string) int {
	for i, r := range s {
		letter := r == '_' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
		if !letter && (i == 0 || r < '0' || r > '9') {
			return i
		}
	}
	return len(s)
}

// hasRefs reports whether s refers to a variable.
func hasRefs(pieces []piece) bool {
	for _, p := range pieces {
		if p.isRef() {
			return true
		}
	}
	return false
}

// literal is s with $$ read as $, for strings without references.
func literal(pieces []piece) string {
	var b strings.Builder
	for _, p := range pieces {
		b.WriteString(p.text)
	}
	return b.String()
}

// shellLine rewrites a shell command line of the pipeline for a shell that has the pipeline's
// variables in its environment: `pipeline run` expands the references, then its shell runs
// the line; here the shell expands them itself. So only $$ changes, to the $ that `pipeline
// run` would have passed on (`$$HOME` is the shell's $HOME in both).
func shellLine(s string) string {
	var b strings.Builder
	writeShellRefs(&b, parseRefs(s), func(b *strings.Builder, t string) { b.WriteString(t) })
	return b.String()
}

// writeShellRefs writes pieces for a POSIX shell: references in ${NAME}, ${NAME:-word} and
// ${NAME:+word} form, which the shell expands as the pipeline would, literal text through lit.
func writeShellRefs(b *strings.Builder, pieces []piece, lit func(*strings.Builder, string)) {
	for _, p := range pieces {
		if !p.isRef() {
			lit(b, p.text)
			continue
		}
		b.WriteString("${" + p.name + p.op)
		if p.op != "" {
			writeShellRefs(b, p.word, lit)
		}
		b.WriteString("}")
	}
}

// kubeValue rewrites s for a container's command, args or env value, where Kubernetes expands
// $(NAME) from the container's env and nothing else. A reference to a variable in env becomes
// $(NAME). A default or alternative, which Kubernetes cannot express, is decided now: by the
// variable's value in known if it has one there, else as if it were unset. Literal text is
// escaped so that Kubernetes leaves it as it is.
func kubeValue(s string, known map[string]string) string {
	var out []piece // literal text and $(NAME) references only
	var add func(pieces []piece)
	add = func(pieces []piece) {
		for _, p := range pieces {
			v, set := known[p.name]
			set = set && v != ""
			switch {
			case !p.isRef():
				out = append(out, p)
			case p.op == "":
				out = append(out, piece{name: p.name})
			case p.op == ":-" && set:
				out = append(out, piece{text: v})
			case p.op == ":-", p.op == ":+" && set:
				add(p.word)
			}
		}
	}
	add(parseRefs(s))
	var b strings.Builder
	for i, p := range out {
		if p.isRef() {
			b.WriteString("$(" + p.name + ")")
			continue
		}
		next := byte(0)
		if i+1 < len(out) {
			next = '$' // a reference, or literal text starting with anything: escape to be sure
			if !out[i+1].isRef() && out[i+1].text != "" {
				next = out[i+1].text[0]
			}
		}
		b.WriteString(kubeEscape(p.text, next))
	}
	return b.String()
}

// kubeEscape doubles each $ of literal text that Kubernetes would otherwise read as the start
// of $(NAME) or as the escape $$: those followed by ( or $ (next is the byte after s, 0 at the
// end).
func kubeEscape(s string, next byte) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		after := next
		if i+1 < len(s) {
			after = s[i+1]
		}
		if s[i] == '$' && (after == '(' || after == '$') {
			b.WriteByte('$')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// resolve decides s now, with the values in known: for fields that neither CI systems nor
// Kubernetes expand (object names, namespaces, images, the working directory). A variable
// without a value in known counts as unset: its default applies, and a plain reference to it
// is reported in missing.
func resolve(s string, known map[string]string) (v string, missing []string) {
	var b strings.Builder
	var write func(pieces []piece)
	write = func(pieces []piece) {
		for _, p := range pieces {
			val, ok := known[p.name]
			set := ok && val != ""
			switch {
			case !p.isRef():
				b.WriteString(p.text)
			case p.op == "" && !ok:
				missing = append(missing, p.name)
			case p.op == "", p.op == ":-" && set:
				b.WriteString(val)
			case p.op == ":-", p.op == ":+" && set:
				write(p.word)
			}
		}
	}
	write(parseRefs(s))
	return b.String(), missing
}

// plainRefs adds to names the variables that s needs set, as resolve and kubeValue decide
// it with known: those it refers to without a default or alternative, and in a default or
// alternative that applies.
func plainRefs(s string, known map[string]string, names map[string]bool) {
	var walk func(pieces []piece)
	walk = func(pieces []piece) {
		for _, p := range pieces {
			v, set := known[p.name]
			set = set && v != ""
			switch {
			case !p.isRef():
			case p.op == "":
				names[p.name] = true
			case p.op == ":-" && !set, p.op == ":+" && set:
				walk(p.word)
			}
		}
	}
	walk(parseRefs(s))
}

// pipelineStrings are all the string values of p, where variable references may be.
func pipelineStrings(p *spec.Pipeline) []string {
	ss := []string{p.Name, p.Namespace, p.ExecutorImage, p.RegistrySecret}
	if s := p.Source; s != nil {
		ss = append(ss, s.Git, s.Ref)
	}
	if b := p.Build; b != nil {
		ss = append(ss, b.Image, b.Command.Shell, b.Workdir, b.Output)
		ss = append(ss, b.Command.Exec...)
		ss = append(ss, slices.Collect(maps.Values(b.Env))...)
	}
	if i := p.Image; i != nil {
		ss = append(ss, i.Dockerfile, i.Context, i.CacheRepo, i.Target)
		ss = append(ss, i.Destinations...)
		ss = append(ss, i.Flags...)
		ss = append(ss, slices.Collect(maps.Values(i.BuildArgs))...)
	}
	if d := p.Deploy; d != nil {
		ss = append(ss, d.Manifests...)
		ss = append(ss, slices.Collect(maps.Values(d.Replacements))...)
	}
	return ss
}
