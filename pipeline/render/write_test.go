package render

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	files := renderWalkthrough(t, Options{})
	if err := Write(dir, files); err != nil {
		t.Fatal(err)
	}
	// Writing again replaces every file; a stale longer file must not leave its tail.
	if err := os.WriteFile(filepath.Join(dir, FileJob), make([]byte, 100000), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, files); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(files) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("%s holds %q, want exactly the %d rendered files (no temporary files left)", dir, names, len(files))
	}
	for name, want := range files {
		path := filepath.Join(dir, name)
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s: content differs from the rendered file", name)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		wantMode := os.FileMode(0o644)
		if name == FileRegcred {
			wantMode = 0o755
		}
		if fi.Mode().Perm() != wantMode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), wantMode)
		}
	}
	for _, bad := range []string{"../escape", "/abs", ""} {
		if err := Write(dir, map[string][]byte{bad: nil}); err == nil {
			t.Errorf("Write accepted the file name %q", bad)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape")); !os.IsNotExist(err) {
		t.Errorf("Write wrote outside its directory: %v", err)
	}
}
