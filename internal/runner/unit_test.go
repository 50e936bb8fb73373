package runner

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestDedupEnvKeepsLastValueInFirstPosition(t *testing.T) {
	got := dedupEnv([]string{"A=1", "B=2", "A=3", "C", "C=x"})
	want := []string{"B=2", "A=3", "C=x"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestLookPathSkipsDirsAndNonExecutables(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, d := range []string{a, b, filepath.Join(a, "tool")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(b, "tool"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=relative:" + a + ":" + b}
	if _, err := lookPath("tool", env); err == nil {
		t.Fatal("found a directory or a non-executable file")
	}
	if err := os.Chmod(filepath.Join(b, "tool"), 0o700); err != nil {
		t.Fatal(err)
	}
	if got, err := lookPath("tool", env); err != nil || got != filepath.Join(b, "tool") {
		t.Fatalf("got %q %v", got, err)
	}
	if got, _ := lookPath("./x/y", env); got != "./x/y" {
		t.Fatalf("path with slash rewritten to %q", got)
	}
}

func TestScratchRestoresParentTimesOnlyWhenUntouched(t *testing.T) {
	root := t.TempDir()
	old := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(root, old, old); err != nil {
		t.Fatal(err)
	}
	sc := newScratch(root)
	if _, err := sc.ensure("/a/b/c", false); err != nil {
		t.Fatal(err)
	}
	sc.seal()
	if err := sc.undo(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(root); !fi.ModTime().Equal(old) {
		t.Fatalf("root mtime %v, want %v restored", fi.ModTime(), old)
	}
	if _, err := os.Lstat(filepath.Join(root, "a")); !os.IsNotExist(err) {
		t.Fatalf("created parents left behind: %v", err)
	}

	// A directory the "command" changed keeps its new mtime.
	sc = newScratch(root)
	if _, err := sc.ensure("/proc", true); err != nil {
		t.Fatal(err)
	}
	sc.seal()
	time.Sleep(10 * time.Millisecond)
	if err := os.WriteFile(filepath.Join(root, "new"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := sc.undo(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(root); fi.ModTime().Equal(old) {
		t.Fatal("mtime restored although the command changed the directory")
	}
	if _, err := os.Lstat(filepath.Join(root, "proc")); !os.IsNotExist(err) {
		t.Fatalf("/proc left behind: %v", err)
	}
}

func TestScratchKeepsMountFileWithContent(t *testing.T) {
	root := t.TempDir()
	sc := newScratch(root)
	p, err := sc.ensure("/etc/hosts", false)
	if err != nil {
		t.Fatal(err)
	}
	sc.seal()
	if err := os.WriteFile(p, []byte("real content"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := sc.undo(); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(p); err != nil || string(data) != "real content" {
		t.Fatalf("file with content removed: %q %v", data, err)
	}
}

func TestExitErrorText(t *testing.T) {
	if got := (&ExitError{Code: 42}).Error(); got != "exit status 42" {
		t.Fatal(got)
	}
}

// TestMakeDirs checks the loop behind working directories and scratch parents: existing
// directories are kept, missing ones made in order, a file in the way is named, and a symlink
// counts as a directory only when stat follows it.
func TestMakeDirs(t *testing.T) {
	base := t.TempDir()
	if err := os.MkdirAll(filepath.Join(base, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a", filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	var made []string
	mkdir := func(dir string) error {
		made = append(made, dir)
		return os.Mkdir(dir, 0o755)
	}
	if err := makeDirs(base, "a/b//c", os.Lstat, mkdir); err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(base, "a/b"), filepath.Join(base, "a/b/c")}
	if !slices.Equal(made, want) {
		t.Errorf("made %q, want %q", made, want)
	}
	err := makeDirs(base, "f/x", os.Lstat, mkdir)
	if err == nil || err.Error() != filepath.Join(base, "f")+" is not a directory" {
		t.Errorf("file in the way: %v", err)
	}
	if err := makeDirs(base, "link/x", os.Lstat, mkdir); err == nil {
		t.Error("Lstat: a symlink was taken for a directory")
	}
	if err := makeDirs(base, "link/x", os.Stat, mkdir); err != nil {
		t.Errorf("Stat: %v", err)
	}
	if _, err := os.Stat(filepath.Join(base, "a/x")); err != nil {
		t.Errorf("link/x not made through the link: %v", err)
	}
}
