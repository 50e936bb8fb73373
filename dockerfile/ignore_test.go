package dockerfile

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func writeFile(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestIgnoreExcluded(t *testing.T) {
	ig, err := NewIgnore([]string{
		"*.log",
		"!keep.log",
		"**/node_modules",
		"build",
		"!build/dist",
		"docs/**/*.md",
		"!docs/README.md",
		"Dockerfile",
		".dockerignore",
		"secret?.txt",
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]bool{
		"a.log":                  true,
		"keep.log":               false,
		"sub/a.log":              false, // "*.log" is anchored at the context root
		"node_modules/x.js":      true,
		"web/app/node_modules":   true,
		"web/app/node_modules/a": true,
		"build/obj.o":            true,
		"build/dist/app":         false, // "!" exception inside an excluded dir
		"build":                  true,
		"docs/a/b/c.md":          true,
		"docs/x.md":              true, // ** matches zero directories
		"docs/README.md":         false,
		"docs/a/b/c.txt":         false,
		"Dockerfile":             true, // not force-included, like BuildKit
		".dockerignore":          true,
		"secret1.txt":            true,
		"secret12.txt":           false,
		"src/main.go":            false,
		".":                      false,
		"":                       false,
		"./a.log":                true, // cleaned
		"/a.log":                 true,
	}
	for rel, want := range tests {
		if got := ig.Excluded(rel); got != want {
			t.Errorf("Excluded(%q) = %v, want %v", rel, got, want)
		}
	}
}

func TestIgnoreExcludedDir(t *testing.T) {
	ig, err := NewIgnore([]string{"build", "!build/dist", "vendor", "cache", "!**/*.keep"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		dir               string
		excluded, mayIncl bool
	}{
		{"build", true, true},
		{"src", false, false},
		{"build/dist", false, false},
		{"vendor", true, true}, // "!**/*.keep" could match anything below
	}
	for _, tt := range tests {
		ex, may := ig.ExcludedDir(tt.dir)
		if ex != tt.excluded || may != tt.mayIncl {
			t.Errorf("ExcludedDir(%q) = %v, %v; want %v, %v", tt.dir, ex, may, tt.excluded, tt.mayIncl)
		}
	}
	noExceptions, _ := NewIgnore([]string{"build", "!other/x"})
	if ex, may := noExceptions.ExcludedDir("build"); !ex || may {
		t.Errorf("ExcludedDir(build) = %v, %v; want prune (true, false)", ex, may)
	}
	if ex, may := noExceptions.ExcludedDir("build/sub"); !ex || may {
		t.Errorf("ExcludedDir(build/sub) = %v, %v", ex, may)
	}
}

func TestIgnoreNil(t *testing.T) {
	var ig *Ignore
	if ig.Excluded("a") || ig.Patterns() != nil {
		t.Error("nil Ignore excludes something")
	}
	if ex, may := ig.ExcludedDir("a"); ex || may {
		t.Error("nil Ignore excludes a dir")
	}
	if _, err := NewIgnore([]string{"!"}); err == nil {
		t.Error("lone ! accepted")
	}
}

func TestLoadIgnorePrecedence(t *testing.T) {
	ctx := t.TempDir()
	writeFile(t, filepath.Join(ctx, ".dockerignore"), "# comment\n*.tmp\n/abs\n")
	writeFile(t, filepath.Join(ctx, "Dockerfile"), "FROM scratch\n")
	writeFile(t, filepath.Join(ctx, "build", "app.Dockerfile"), "FROM scratch\n")
	writeFile(t, filepath.Join(ctx, "build", "app.Dockerfile.dockerignore"), "*.secret\n")

	ig, err := LoadIgnore(ctx, filepath.Join(ctx, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ig.Patterns(), []string{"*.tmp", "abs"}) {
		t.Errorf("context .dockerignore patterns = %q", ig.Patterns())
	}
	if !ig.Excluded("x.tmp") || !ig.Excluded("abs/f") || ig.Excluded("x.secret") {
		t.Error("context .dockerignore not applied")
	}

	ig, err = LoadIgnore(ctx, filepath.Join(ctx, "build", "app.Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if !ig.Excluded("x.secret") || ig.Excluded("x.tmp") {
		t.Errorf("Dockerfile-specific ignore file must win: %q", ig.Patterns())
	}

	empty := t.TempDir()
	ig, err = LoadIgnore(empty, filepath.Join(empty, "Dockerfile"))
	if err != nil || ig.Excluded("anything") || len(ig.Patterns()) != 0 {
		t.Errorf("no ignore file: %v %q", err, ig.Patterns())
	}

	writeFile(t, filepath.Join(ctx, "bad", "Dockerfile.dockerignore"), "!\n")
	_, err = LoadIgnore(ctx, filepath.Join(ctx, "bad", "Dockerfile"))
	if err == nil || !strings.Contains(err.Error(), filepath.Join(ctx, "bad", "Dockerfile.dockerignore")) {
		t.Errorf("bad pattern error must name the file: %v", err)
	}
}

func TestIgnoreConcurrent(t *testing.T) {
	ig, err := NewIgnore([]string{"**/*.o", "!keep/**", "a/b/c*"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				if !ig.Excluded("x/y.o") || ig.Excluded("keep/y.o") || !ig.Excluded("a/b/cd") {
					t.Error("wrong result under concurrency")
					return
				}
			}
		}()
	}
	wg.Wait()
}
