package render

import (
	"maps"
	"slices"
	"strings"

	"github.com/kilnbuild/kiln/pipeline/spec"
)

// words reads s, a string of the pipeline, in the pipeline file's syntax for variables
// (spec.Word). Each target writes the references in its own syntax, so that its shell or
// Kubernetes fills in what `pipeline run` would. A malformed reference (Parse rejects those)
// stays literal text, with the rest of its word.
func words(s string) spec.Word {
	w, _ := spec.ParseWord(s)
	return w
}

// isRef reports whether p is a reference rather than literal text.
func isRef(p spec.Piece) bool { return p.Name != "" }

// hasRefs reports whether pieces refer to a variable.
func hasRefs(pieces spec.Word) bool {
	for _, p := range pieces {
		if isRef(p) {
			return true
		}
	}
	return false
}

// literal is the text of pieces ($$ read as $), for strings without references.
func literal(pieces spec.Word) string {
	var b strings.Builder
	for _, p := range pieces {
		b.WriteString(p.Text)
	}
	return b.String()
}

// shellLine rewrites a shell command line of the pipeline for a shell that has the pipeline's
// variables in its environment: `pipeline run` expands the references, then its shell runs
// the line; here the shell expands them itself. So only $$ changes, to the $ that `pipeline
// run` would have passed on (`$$HOME` is the shell's $HOME in both).
func shellLine(s string) string {
	var b strings.Builder
	writeShellRefs(&b, words(s), func(b *strings.Builder, t string) { b.WriteString(t) })
	return b.String()
}

// writeShellRefs writes pieces for a POSIX shell: references in ${NAME}, ${NAME:-word} and
// ${NAME:+word} form, which the shell expands as the pipeline would, literal text through lit.
func writeShellRefs(b *strings.Builder, pieces spec.Word, lit func(*strings.Builder, string)) {
	for _, p := range pieces {
		if !isRef(p) {
			lit(b, p.Text)
			continue
		}
		b.WriteString("${" + p.Name + p.Op)
		if p.Op != "" {
			writeShellRefs(b, p.Word, lit)
		}
		b.WriteString("}")
	}
}

// kubeValue rewrites s for a container's command, args or env value, where Kubernetes expands
// $(NAME) from the container's env and nothing else. A reference to a variable in env becomes
// $(NAME). A default or alternative, which Kubernetes cannot express, is decided now (see
// kubePieces). Literal text is escaped so that Kubernetes leaves it as it is.
func kubeValue(s string, known map[string]string) string {
	out := kubePieces(s, known)
	var b strings.Builder
	for i, p := range out {
		if isRef(p) {
			b.WriteString("$(" + p.Name + ")")
			continue
		}
		next := byte(0)
		if i+1 < len(out) {
			next = '$' // a reference, or literal text starting with anything: escape to be sure
			if !isRef(out[i+1]) && out[i+1].Text != "" {
				next = out[i+1].Text[0]
			}
		}
		b.WriteString(kubeEscape(p.Text, next))
	}
	return b.String()
}

// kubePieces is s as Kubernetes can take it: literal text and plain references only. A default
// or alternative is decided by the variable's value in known if it has one there, else as if
// it were unset.
func kubePieces(s string, known map[string]string) spec.Word {
	var out spec.Word
	var add func(pieces spec.Word)
	add = func(pieces spec.Word) {
		for _, p := range pieces {
			v, set := known[p.Name]
			set = set && v != ""
			switch {
			case !isRef(p):
				out = append(out, p)
			case p.Op == "":
				out = append(out, spec.Piece{Name: p.Name})
			case p.Op == ":-" && set:
				out = append(out, spec.Piece{Text: v})
			case p.Op == ":-", p.Op == ":+" && set:
				add(p.Word)
			}
		}
	}
	add(words(s))
	return out
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
	return words(s).Value(func(name string) (string, bool) {
		v, ok := known[name]
		return v, ok
	})
}

// plainRefs adds to names the variables that s needs set, as resolve and kubeValue decide
// it with known: those it refers to without a default or alternative, and in a default or
// alternative that applies.
func plainRefs(s string, known map[string]string, names map[string]bool) {
	for _, p := range kubePieces(s, known) {
		if isRef(p) {
			names[p.Name] = true
		}
	}
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
