package spec

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// FuzzExpand reads arbitrary strings in the pipeline file's variable syntax and gives them
// values. Nothing may panic; an error quotes at most a clipped piece of the input; a Word
// read without error keeps what Word promises (no empty or adjacent literal text, valid names,
// only :- and :+, at most 8 deep), reads back the same once written out again, and its value
// is its text when it refers to nothing; the unset names Value reports are names the word
// refers to that lookup does not know, each once.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{"", "plain", "$$HOME $ 5$ $1", "a$A.${B_1}", "${A:-}", "${A:-x${B:+$$y}}}",
		"$$x ${not valid} $A", "$A ${B", "${A:-x${1}$$}$B${C?}", strings.Repeat("${U:-", 9) + "x" + strings.Repeat("}", 9),
		strings.Repeat("${U:-", 7) + "$U" + strings.Repeat("}", 7),
		"${REGISTRY_USER}/app:${BUILD_NUMBER}", "${E:+no}-${A:+yes}", "$", "${", "}", "$$$", "${A:-${B:-${C}}}"} {
		f.Add(s, "A")
	}
	f.Fuzz(func(t *testing.T, s, set string) {
		w, err := ParseWord(s)
		if err != nil {
			if len(err.Error()) > 400 {
				t.Errorf("a %d-byte error", len(err.Error()))
			}
			w.Value(nil)
			return
		}
		checkWord(t, w, 1)
		if back, err := ParseWord(writeWord(w)); err != nil || !reflect.DeepEqual(back, w) {
			t.Fatalf("%q reads as %#v; written out, %q reads as %#v, %v", s, w, writeWord(w), back, err)
		}
		lookup := func(name string) (string, bool) {
			if strings.Contains(set, name) {
				return "v", true
			}
			return "", false
		}
		v, unset := w.Value(lookup)
		if !strings.Contains(s, "$") && v != s {
			t.Errorf("%q without references has the value %q", s, v)
		}
		names := refNames(w)
		for i, n := range unset {
			if !slices.Contains(names, n) || strings.Contains(set, n) || slices.Contains(unset[:i], n) {
				t.Errorf("%q: unset %q", s, unset)
			}
		}
		if len(names) == 0 && (len(unset) > 0 || v != writeLiteral(w)) {
			t.Errorf("%q: value %q, unset %q", s, v, unset)
		}
	})
}

// checkWord checks the promises of Word at nesting depth depth.
func checkWord(t *testing.T, w Word, depth int) {
	t.Helper()
	if depth > maxNesting && len(w) > 0 {
		t.Fatalf("nested %d deep", depth)
	}
	for i, p := range w {
		if p.Name == "" {
			if p.Text == "" || i > 0 && w[i-1].Name == "" || p.Op != "" || p.Word != nil {
				t.Fatalf("bad literal piece %d of %#v", i, w)
			}
			continue
		}
		if nameLen(p.Name) != len(p.Name) || p.Text != "" || p.Op != "" && p.Op != ":-" && p.Op != ":+" || p.Op == "" && p.Word != nil {
			t.Fatalf("bad reference piece %d of %#v", i, w)
		}
		checkWord(t, p.Word, depth+1)
	}
}

// writeWord writes w in the file's syntax: $ doubled in text, references braced.
func writeWord(w Word) string {
	var b strings.Builder
	for _, p := range w {
		if p.Name == "" {
			b.WriteString(strings.ReplaceAll(p.Text, "$", "$$"))
			continue
		}
		b.WriteString("${" + p.Name + p.Op + writeWord(p.Word) + "}")
	}
	return b.String()
}

// writeLiteral is the text of a word without references.
func writeLiteral(w Word) string {
	var b strings.Builder
	for _, p := range w {
		b.WriteString(p.Text)
	}
	return b.String()
}

func refNames(w Word) []string {
	var out []string
	for _, p := range w {
		if p.Name != "" {
			out = append(out, p.Name)
			out = append(out, refNames(p.Word)...)
		}
	}
	return out
}
