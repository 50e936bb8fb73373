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
// A $ not followed by a name, { or $ stays as is (the syntax is Word's; a malformed reference
// is an error, in a default or alternative that goes unused too). An optional key that expands
// to nothing is as if it were left out (target: ${TARGET:-}), and so is an image.flags item; a
// required key that expands to nothing is an error. lookup gives a variable's value and whether
// it is set (Lookup makes one from --var flags and the environment; nil: no variable is set).
// Every unset variable, and every value the expansion makes bad (an invalid destination, an
// absolute path), is reported, each naming the file, line and key.
func (p *Pipeline) Expand(lookup func(name string) (string, bool)) (*Pipeline, error) {
	if lookup == nil {
		lookup = noVars
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
	if q.Image != nil {
		// A flag that expands to nothing is left out, so a file can give one only when a
		// variable is set: ${INSECURE_REGISTRY:+--insecure-registry=$INSECURE_REGISTRY}.
		q.Image.Flags = slices.DeleteFunc(q.Image.Flags, func(f string) bool { return f == "" })
	}
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
		e := &expander{all: true, lookup: noVars}
		w, _ := ParseWord(*s) // a malformed value (Parse rejects those): the names that read
		e.word(w)
		for _, n := range e.names {
			seen[n] = true
		}
	})
	return slices.Sorted(maps.Keys(seen))
}

// Value is w's value as Expand gives it, with the variables' values from lookup (nil: no
// variable is set), and the variables it needs that are unset (referred to other than in a
// default or alternative that goes unused), once each, in order.
func (w Word) Value(lookup func(name string) (string, bool)) (v string, unset []string) {
	if lookup == nil {
		lookup = noVars
	}
	e := &expander{lookup: lookup}
	return e.word(w), e.missing
}

// noVars is the lookup of no variables.
func noVars(string) (string, bool) { return "", false }

// expander gives Words their values.
type expander struct {
	lookup  func(string) (string, bool)
	all     bool     // go through defaults and alternatives even where unused (to list their names)
	names   []string // every variable met
	missing []string // unset variables without a default, once each
}

// expand parses s and gives its value.
func (e *expander) expand(s string) (string, error) {
	w, err := ParseWord(s)
	if err != nil {
		return "", err
	}
	return e.word(w), nil
}

func (e *expander) word(w Word) string {
	var b strings.Builder
	for _, p := range w {
		b.WriteString(e.piece(p))
	}
	return b.String()
}

func (e *expander) piece(p Piece) string {
	if p.Name == "" {
		return p.Text
	}
	if p.Op == "" {
		return e.value(p.Name)
	}
	v, ok := e.get(p.Name)
	set := ok && v != ""
	if (p.Op == ":-") == set { // the word is unused: ${SET:-word}, ${UNSET:+word}
		if e.all {
			e.word(p.Word)
		}
		if p.Op == ":+" {
			v = ""
		}
		return v
	}
	return e.word(p.Word)
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
