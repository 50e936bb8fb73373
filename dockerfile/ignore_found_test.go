package dockerfile

import "testing"

// Found by FuzzIgnore: patternmatcher (moby's, as BuildKit uses) leaves | { } unescaped when it
// turns a pattern into a regular expression, so the exception "!r|*t" includes every path
// ending in t; ExcludedDir, reading the pattern with path.Match, said nothing below an
// excluded directory could be included, and a walk pruned files that Excluded includes.
func TestExcludedDirFollowsRegexpLikeExceptions(t *testing.T) {
	for _, tc := range []struct {
		patterns   []string
		dir, below string
	}{
		{[]string{"**r", "!r|*t"}, "d\x01r", "d\x01r/sub/a.txt"},
		{[]string{"*", `!\d*/x`}, "1", "1/x"},
		{[]string{"*", "!a{2}*/x"}, "aa", "aa/x"},
	} {
		ig, err := NewIgnore(tc.patterns)
		if err != nil {
			t.Fatal(err)
		}
		excluded, mayInclude := ig.ExcludedDir(tc.dir)
		if ig.Excluded(tc.below) || !excluded {
			t.Fatalf("%q: %q excluded, or %q not", tc.patterns, tc.below, tc.dir)
		}
		if !mayInclude {
			t.Errorf("%q: ExcludedDir(%q) = %v, %v, but %q is included", tc.patterns, tc.dir, excluded, mayInclude, tc.below)
		}
	}
}
