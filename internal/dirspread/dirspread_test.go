package dirspread

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// flaggedDir returns a new directory with the flag set, or skips when the test's file system
// has no such flag (only ext4 has it).
func flaggedDir(t *testing.T) (string, func()) {
	t.Helper()
	d := t.TempDir()
	restore := Children(d)
	if !Set(d) {
		t.Skipf("the file system under %s has no top-directory flag (ext4 has; XFS, Btrfs and tmpfs do not)", d)
	}
	return d, restore
}

func TestChildrenSetsAndRestoresTheFlag(t *testing.T) {
	d, restore := flaggedDir(t)
	again := Children(d) // already set: nothing to undo
	again()
	if !Set(d) {
		t.Fatal("a second Children's restore cleared the flag the first one set")
	}
	restore()
	if Set(d) {
		t.Fatal("restore left the flag set on a directory that did not have it")
	}
}

func TestChildrenOnWhatCannotHoldTheFlag(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	Children(missing)() // must neither fail nor create it
	if _, err := os.Lstat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Children created or found %s: %v", missing, err)
	}
	if Set(missing) {
		t.Fatal("Set reports the flag on a missing directory")
	}
}

func TestMkdirCreatesUnderItsNameOnly(t *testing.T) {
	d, _ := flaggedDir(t)
	p := filepath.Join(d, "usr")
	if err := Mkdir(p, 0o750); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(p)
	if err != nil || !fi.IsDir() {
		t.Fatalf("%s is not a directory: %v", p, err)
	}
	if got := fi.Mode().Perm() &^ 0o022; got != 0o750&^0o022 {
		t.Errorf("mode %v, want 0750 less the umask", fi.Mode().Perm())
	}
	if !Set(p) {
		t.Error("the new directory does not have the flag, so its subdirectories would not be spread")
	}
	Clear(p)
	if Set(p) {
		t.Error("Clear left the flag")
	}
	if err := os.WriteFile(filepath.Join(p, "kept"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err = Mkdir(p, 0o755)
	if !errors.Is(err, os.ErrExist) {
		t.Fatalf("Mkdir over an existing directory: %v, want EEXIST", err)
	}
	if _, err := os.Lstat(filepath.Join(p, "kept")); err != nil {
		t.Fatalf("Mkdir over an existing directory replaced it: %v", err)
	}
	names, err := os.ReadDir(d)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0].Name() != "usr" {
		t.Fatalf("the parent holds %v, want only usr (no temporary name left)", names)
	}
}

func TestMkdirWithoutTheFlag(t *testing.T) {
	p := filepath.Join(t.TempDir(), "etc")
	if err := Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(p); err != nil || !fi.IsDir() {
		t.Fatalf("%s is not a directory: %v", p, err)
	}
	if err := Mkdir(filepath.Join(p, "missing", "x"), 0o755); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Mkdir under a missing parent: %v, want ENOENT", err)
	}
}
