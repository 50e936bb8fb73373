package copier

import (
	"context"
	"io/fs"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// parentsTree is a context with the same file names at several depths.
var parentsTree = map[string]node{
	"x":             {dir: true, mode: 0o750, uid: 7, gid: 8},
	"x/a.txt":       {data: "xa"},
	"x/y":           {dir: true, mode: 0o700},
	"x/y/a.txt":     {data: "xya"},
	"x/y/b.txt":     {data: "xyb"},
	"x/y/c.log":     {data: "xyc"},
	"x/y/z":         {dir: true},
	"x/y/z/d.txt":   {data: "xyzd"},
	"y":             {dir: true},
	"y/a.txt":       {data: "ya"},
	"y/link":        {link: "a.txt"},
	"src":           {dir: true},
	"src/a.txt":     {data: "sa"},
	"src/p/q/c.txt": {data: "spqc"},
	"src/p/q/c.md":  {data: "spqm"},
	"top.txt":       {data: "top"},
	"ignored.txt":   {data: "i"},
}

// entries lists every path below root, slash-separated, sorted.
func entries(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func TestCopyParents(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name    string
		sources []string
		dest    string
		want    []string
		check   map[string]string
		wantErr string
	}{
		{name: "files keep their context paths (BuildKit's doc example)",
			sources: []string{"./x/a.txt", "./y/a.txt"}, dest: "/parents/",
			want: []string{"parents", "parents/x", "parents/x/a.txt", "parents/y", "parents/y/a.txt"},
			// the kept parent directory has the source directory's mode (context files are 0:0)
			check: map[string]string{"parents/x": "dir 0750 0:0", "parents/x/a.txt": "file 0644 0:0 xa"}},
		{name: "a pivot keeps only what follows it",
			sources: []string{"./x/./y/*.txt"}, dest: "/parents/",
			want:  []string{"parents", "parents/y", "parents/y/a.txt", "parents/y/b.txt"},
			check: map[string]string{"parents/y": "dir 0700 0:0"}},
		{name: "** matches any depth, none included",
			sources: []string{"./src/**/*.txt"}, dest: "/p",
			want: []string{"p", "p/src", "p/src/a.txt", "p/src/p", "p/src/p/q", "p/src/p/q/c.txt"}},
		{name: "a directory is copied whole below its kept parents",
			sources: []string{"x/y/z"}, dest: "/d/",
			want: []string{"d", "d/x", "d/x/y", "d/x/y/z", "d/x/y/z/d.txt"}},
		{name: "a wildcard pivot",
			sources: []string{"*/./a.txt"}, dest: "/d/",
			want: []string{"d", "d/a.txt"}, check: map[string]string{"d/a.txt": "file 0644 0:0 ya"}},
		{name: "matched symlinks stay symlinks",
			sources: []string{"y/./link"}, dest: "/d/",
			want: []string{"d", "d/link"}, check: map[string]string{"d/link": "link -> a.txt"}},
		{name: "the destination is a directory even without a slash",
			sources: []string{"top.txt"}, dest: "/app",
			want: []string{"app", "app/top.txt"}},
		{name: ".dockerignore applies",
			sources: []string{"*.txt"}, dest: "/d/",
			want: []string{"d", "d/top.txt"}},
		{name: "a missing exact source is an error",
			sources: []string{"x/nope.txt"}, dest: "/d/", wantErr: "nope.txt"},
		{name: "an ignored exact source is an error",
			sources: []string{"ignored.txt"}, dest: "/d/", wantErr: "excluded by .dockerignore"},
		{name: "a pattern matching nothing is an error",
			sources: []string{"**/*.nothing"}, dest: "/d/", wantErr: "no source files"},
		{name: "climbing out of the context is an error",
			sources: []string{"../x/./a.txt"}, dest: "/d/", wantErr: "outside the build context"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, root := t.TempDir(), t.TempDir()
			build(t, src, parentsTree)
			_, err := Copy(context.Background(), Request{SrcRoot: src, Sources: tc.sources, Dest: tc.dest,
				Root: root, WorkDir: "/", Parents: true, Exclude: dockerignore(t, "ignored.txt")})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := entries(t, root); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("root holds %q, want %q", got, tc.want)
			}
			checkTree(t, root, tc.check)
		})
	}
}

func TestParentsSourceTest(t *testing.T) {
	p, err := NewParentsSource("./src/./**/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Prefix(); got != "src" {
		t.Errorf("Prefix = %q, want src", got)
	}
	for _, c := range []struct {
		rel           string
		copied, walks bool
	}{
		{".", false, true},
		{"src", false, true},
		{"other", false, false},
		{"src/a.txt", true, true},
		{"src/p", false, true},
		{"src/p/q/c.txt", true, true},
		{"src/p/q/c.md", false, true},
	} {
		if copied, walks := p.Test(c.rel); copied != c.copied || walks != c.walks {
			t.Errorf("Test(%q) = %v, %v; want %v, %v", c.rel, copied, walks, c.copied, c.walks)
		}
	}
	lit, _ := NewParentsSource("a/b/c.txt")
	if copied, walks := lit.Test("a/x"); copied || walks {
		t.Errorf("a/x under a literal a/b/c.txt: copied %v, walked %v", copied, walks)
	}
}
