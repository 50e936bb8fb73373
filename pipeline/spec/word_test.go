package spec

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseWord(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Word
	}{
		{"", nil},
		{"plain", Word{{Text: "plain"}}},
		{"$$HOME $ 5$ $1", Word{{Text: "$HOME $ 5$ $1"}}},
		{"a$A.${B_1}", Word{{Text: "a"}, {Name: "A"}, {Text: "."}, {Name: "B_1"}}},
		{"${A:-}", Word{{Name: "A", Op: ":-"}}},
		{"${A:-x${B:+$$y}}}", Word{
			{Name: "A", Op: ":-", Word: Word{{Text: "x"}, {Name: "B", Op: ":+", Word: Word{{Text: "$y"}}}}},
			{Text: "}"},
		}},
	} {
		got, err := ParseWord(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseWord(%q) = %#v, %v; want %#v", tc.in, got, err, tc.want)
		}
	}
}

// TestParseWordMalformed checks the error and the reading that comes with it: the malformed
// reference and the rest of its word as literal text, the words around it read on.
func TestParseWordMalformed(t *testing.T) {
	for _, tc := range []struct {
		in, err string
		want    Word
	}{
		{"$$x ${not valid} $A", "${not valid} is not a variable reference", Word{{Text: "$x ${not valid} $A"}}},
		{"$A ${B", "${B has no closing }", Word{{Name: "A"}, {Text: " ${B"}}},
		{"${A:-x${1}$$}$B${C?}", "${1} is not a variable reference", Word{
			{Name: "A", Op: ":-", Word: Word{{Text: "x${1}$$"}}}, {Name: "B"}, {Text: "${C?}"},
		}},
	} {
		got, err := ParseWord(tc.in)
		if err == nil || !strings.HasPrefix(err.Error(), tc.err) || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseWord(%q) = %#v, %v; want %#v and an error starting %q", tc.in, got, err, tc.want, tc.err)
		}
	}
	deep := strings.Repeat("${U:-", maxNesting) + "x" + strings.Repeat("}", maxNesting)
	if _, err := ParseWord(deep); err == nil || !strings.Contains(err.Error(), "nest more than 8 deep") {
		t.Errorf("%d deep: %v, want an error", maxNesting, err)
	}
}

func TestWordValue(t *testing.T) {
	lookup := Lookup(map[string]string{"A": "a", "E": ""}, nil)
	for _, tc := range []struct{ in, want, unset string }{
		{"x${A}y$$", "xay$", ""},
		{"${U:-${A}}-${E:+no}-${A:+yes}", "a--yes", ""},
		{"${U}$V${U}${A:-${W}}${E:-${X}}", "a", "U V X"},
	} {
		w, err := ParseWord(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		v, unset := w.Value(lookup)
		if v != tc.want || strings.Join(unset, " ") != tc.unset {
			t.Errorf("%q: Value = %q, unset %q; want %q, unset %q", tc.in, v, unset, tc.want, tc.unset)
		}
	}
	if v, unset := (Word{{Name: "A"}}).Value(nil); v != "" || len(unset) != 1 {
		t.Errorf("with no lookup: %q, unset %q; want A unset", v, unset)
	}
}
