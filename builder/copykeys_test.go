package builder

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/cache"
)

// TestParentsInputs: a COPY --parents key covers the matched files (at any depth for "**")
// and the directories kept above them, not the files the pattern leaves out.
func TestParentsInputs(t *testing.T) {
	root := t.TempDir()
	for p, c := range map[string]string{"src/a.go": "a", "src/deep/er/b.go": "b", "src/notes.md": "n", "other/c.go": "c"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	none := func(string) bool { return false }
	key := func() (cache.Key, []cache.Input) {
		in, err := parentsInputs(root, []string{"src/**/*.go"}, none, nil)
		if err != nil {
			t.Fatal(err)
		}
		return cache.NewKey("", in...), in
	}
	before, in := key()
	got := names(in)
	for _, want := range []string{"file:src/a.go=", "file:src/deep/er/b.go=", "file:src/deep="} {
		if !contains(got, want) {
			t.Errorf("inputs %s: %s missing", got, want)
		}
	}
	for _, unused := range []string{"notes.md", "other/c.go"} {
		if contains(got, unused) {
			t.Errorf("inputs %s name %s, which the pattern leaves out", got, unused)
		}
	}
	for _, c := range []struct {
		change  func() error
		changes bool
	}{
		{func() error { return os.WriteFile(filepath.Join(root, "src/notes.md"), []byte("x"), 0o644) }, false},
		{func() error { return os.WriteFile(filepath.Join(root, "other/c.go"), []byte("x"), 0o644) }, false},
		{func() error { return os.WriteFile(filepath.Join(root, "src/deep/er/b.go"), []byte("x"), 0o644) }, true},
		{func() error { return os.Chmod(filepath.Join(root, "src/deep"), 0o700) }, true},
	} {
		if err := c.change(); err != nil {
			t.Fatal(err)
		}
		after, _ := key()
		if (after != before) != c.changes {
			t.Errorf("key changed = %v, want %v (inputs %s)", after != before, c.changes, names(in))
		}
		before = after
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
