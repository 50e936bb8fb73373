package spec

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Expand returns a deep copy of p with the variable references in every string value replaced
// (keys, such as those of replacements, stay as written):
//
//	${NAME} or $NAME     NAME's value; an error if NAME is not set
//	${NAME:-default}     default when NAME is unset or empty (default may hold references)
//	${NAME:+alternative} alternative when NAME is set and not empty, else nothing
//	$$                   a literal $ (write $$HOME for a $HOME the build's shell expands)
//
// A $ not followed by a name, { or $ stays as is. An optional key that expands to nothing is
// as if it were left out (target: ${TARGET:-}); a required one is an error. lookup gives a
// variable's value and whether it is set (Lookup makes one from --var flags and the
// environment; nil: no variable is set). Every unset variable, and every value the expansion
// makes bad (an invalid destination, an absolute path), is reported, each naming the file,
// line and key.
func (p *Pipeline) Expand(lookup func(name string) (string, bool)) (*Pipeline, error) {
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	q := p.clone()
	var errs, bad []*Error // bad: values that expand to something wrong, checked if all are set
	q.eachString(func(path string, s *string, emptyOK bool) {
		e := &expander{lookup: lookup}
		v, err := e.expand(*s)
		if err != nil {
			errs = append(errs, q.errorAt(path, err))
			return
		}
		for _, name := range e.missing {
			errs = append(errs, q.errorAt(path, unset(path, name)))
		}
		if v == "" && *s != "" && !emptyOK {
			bad = append(bad, q.errorAt(path, fmt.Errorf("%q expands to nothing", *s)))
		}
		*s = v
	})
	if len(errs) == 0 {
		errs = append(bad, q.check(true)...)
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return q, nil
}

func unset(path, name string) error {
	shell := ""
	if strings.HasPrefix(path, "build.command") {
		shell = fmt.Sprintf("; $$%s leaves it to the command's shell", name)
	}
	return fmt.Errorf("${%s} is not set (give --var %s=... or set it in the environment%s)", name, name, shell)
}

// Lookup returns a variable lookup for Expand: vars (from --var NAME=VALUE and --build-number)
// first, then env (os.LookupEnv; nil for none).
func Lookup(vars map[string]string, env func(string) (string, bool)) func(string) (string, bool) {
	return func(name string) (string, bool) {
		if v, ok := vars[name]; ok {
			return v, true
		}
		if env != nil {
			return env(name)
		}
		return "", false
	}
}

// Variables lists, sorted, the variables p's values refer to, those in defaults and
// alternatives included.
func (p *Pipeline) Variables() []string {
	seen := map[string]bool{}
	p.eachString(func(_ string, s *string, _ bool) {
		e := &expander{all: true, lookup: func(string) (string, bool) { return "", false }}
		_, _ = e.expand(*s)
		for _, n := range e.names {
			seen[n] = true
		}
	})
	return slices.Sorted(maps.Keys(seen))
}

// expander expands the references in one string.
type expander struct {
	lookup  func(string) (string, bool)
	all     bool     // expand defaults and alternatives even where unused (to list or check them)
	names   []string // every variable met
	missing []string // unset variables without a default, once each
	depth   int      // of expand calls: words of references within references
}

// maxNesting bounds references in defaults in references (${A:-${B:-...}}).
const maxNesting = 8

func (e *expander) expand(s string) (string, error) {
	if e.depth++; e.depth > maxNesting {
		return "", fmt.Errorf("references nest more than %d deep", maxNesting)
	}
	defer func() { e.depth-- }()
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		v, n, err := e.reference(s[i:])
		if err != nil {
			return "", err
		}
		b.WriteString(v)
		s = s[i+n:]
	}
}

// reference expands the reference s starts with (s[0] is '$'); n is its length.
func (e *expander) reference(s string) (v string, n int, err error) {
	switch {
	case strings.HasPrefix(s, "$$"):
		return "$", 2, nil
	case strings.HasPrefix(s, "${"):
		return e.braced(s)
	}
	n = nameLen(s[1:])
	if n == 0 {
		return "$", 1, nil
	}
	return e.value(s[1 : 1+n]), 1 + n, nil
}

// braced expands ${NAME}, ${NAME:-word} or ${NAME:+word} at the start of s.
func (e *expander) braced(s string) (string, int, error) {
	end := closing(s)
	if end < 0 {
		return "", 0, fmt.Errorf("%s has no closing }", clip(s))
	}
	body := s[2:end]
	n := nameLen(body)
	name, op := body[:n], body[n:]
	word := ""
	if strings.HasPrefix(op, ":-") || strings.HasPrefix(op, ":+") {
		op, word = op[:2], op[2:]
	}
	if n == 0 || (op != "" && op != ":-" && op != ":+") {
		return "", 0, fmt.Errorf("%s is not a variable reference: write ${NAME}, ${NAME:-default} or ${NAME:+alternative} (names: letters, digits, _), or $$ for a $", clip(s[:end+1]))
	}
	if op == "" {
		return e.value(name), end + 1, nil
	}
	v, ok := e.get(name)
	set := ok && v != ""
	if (op == ":-") == set { // the word is unused: ${SET:-word}, ${UNSET:+word}
		if op == ":+" {
			v = ""
		}
		return v, end + 1, e.unused(word)
	}
	v, err := e.expand(word)
	return v, end + 1, err
}

func (e *expander) get(name string) (string, bool) {
	e.names = append(e.names, name)
	return e.lookup(name)
}

// value is name's value, noting name as missing if it is unset.
func (e *expander) value(name string) string {
	v, ok := e.get(name)
	if !ok && !slices.Contains(e.missing, name) {
		e.missing = append(e.missing, name)
	}
	return v
}

// unused checks an unused default or alternative, and notes its names, when e.all is set.
func (e *expander) unused(word string) error {
	if !e.all {
		return nil
	}
	_, err := e.expand(word)
	return err
}

// closing is the index of the } closing the ${ s starts with, or -1.
func closing(s string) int {
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

// clip shortens a reference quoted in a message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}
