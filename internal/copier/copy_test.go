package copier

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/moby/patternmatcher"
)

// contextTree is the build context most cases copy from.
var contextTree = map[string]node{
	"a.txt":     {data: "A"},
	"b.txt":     {data: "B", mode: 0o755},
	"c.log":     {data: "C"},
	"s.bin":     {data: "S", mode: fs.ModeSetuid | 0o755},
	"dir":       {dir: true, mode: 0o750, uid: 1000, gid: 1000},
	"dir/x":     {data: "X", uid: 1000, gid: 1000},
	"dir/sub":   {dir: true},
	"dir/sub/y": {data: "Y"},
	"dir/link":  {link: "x"},
	"toplink":   {link: "a.txt"},
	"dirlink":   {link: "dir"},
}

// dockerignore builds an Exclude func the way the builder will, from
// .dockerignore patterns.
func dockerignore(t *testing.T, patterns ...string) func(string) bool {
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	return func(rel string) bool {
		ok, err := pm.MatchesOrParentMatches(rel)
		return err == nil && ok
	}
}

func TestCopy(t *testing.T) {
	requireRoot(t)
	underIgn := func(p string) bool { return p == "/ign" || strings.HasPrefix(p, "/ign/") }
	tests := []struct {
		name        string
		req         Request // SrcRoot and Root are filled in
		root        map[string]node
		want        map[string]string
		wantWritten []string
		wantErr     string
	}{
		{name: "file to new file name",
			req:  Request{Sources: []string{"a.txt"}, Dest: "/b.txt"},
			want: map[string]string{"b.txt": "file 0644 0:0 A"}, wantWritten: []string{"/b.txt"}},
		{name: "file into new dir with slash creates 0755 root-owned parents",
			req:         Request{Sources: []string{"a.txt"}, Dest: "/new/d/"},
			want:        map[string]string{"new": "dir 0755 0:0", "new/d": "dir 0755 0:0", "new/d/a.txt": "file 0644 0:0 A"},
			wantWritten: []string{"/new"}},
		{name: "file into existing dir without slash",
			req:  Request{Sources: []string{"a.txt"}, Dest: "/opt"},
			root: map[string]node{"opt": {dir: true, mode: 0o700}},
			want: map[string]string{"opt": "dir 0700 0:0", "opt/a.txt": "file 0644 0:0 A"}, wantWritten: []string{"/opt/a.txt"}},
		{name: "file overwrites existing file",
			req:  Request{Sources: []string{"a.txt"}, Dest: "/f"},
			root: map[string]node{"f": {data: "old", mode: 0o600, uid: 3}},
			want: map[string]string{"f": "file 0644 0:0 A"}, wantWritten: []string{"/f"}},
		{name: "dir copies contents to new path with source dir metadata",
			req: Request{Sources: []string{"dir"}, Dest: "/app"},
			want: map[string]string{"app": "dir 0750 0:0", "app/x": "file 0644 0:0 X", "app/sub/y": "file 0644 0:0 Y",
				"app/link": "link -> x", "app/dir": "absent"},
			wantWritten: []string{"/app"}},
		{name: "dir into existing dir keeps its metadata",
			req:         Request{Sources: []string{"dir"}, Dest: "/app"},
			root:        map[string]node{"app": {dir: true, mode: 0o700, uid: 5}, "app/keep": {data: "K"}},
			want:        map[string]string{"app": "dir 0700 5:0", "app/x": "file 0644 0:0 X", "app/keep": "file 0644 0:0 K"},
			wantWritten: []string{"/app/link", "/app/sub", "/app/x"}},
		{name: "existing nested dir takes the source metadata",
			req:         Request{Sources: []string{"dir"}, Dest: "/app"},
			root:        map[string]node{"app": {dir: true}, "app/sub": {dir: true, mode: 0o777, uid: 9}},
			want:        map[string]string{"app/sub": "dir 0755 0:0", "app/sub/y": "file 0644 0:0 Y"},
			wantWritten: []string{"/app/link", "/app/sub", "/app/x"}},
		{name: "multiple sources need a dir dest",
			req:     Request{Sources: []string{"a.txt", "b.txt"}, Dest: "/d"},
			wantErr: "When using COPY with more than one source file, the destination must be a directory and end with a /"},
		{name: "multiple sources into dir",
			req:         Request{Sources: []string{"a.txt", "b.txt"}, Dest: "/d/"},
			want:        map[string]string{"d": "dir 0755 0:0", "d/a.txt": "file 0644 0:0 A", "d/b.txt": "file 0755 0:0 B"},
			wantWritten: []string{"/d"}},
		{name: "multiple sources into existing dir without slash",
			req:         Request{Sources: []string{"a.txt", "b.txt"}, Dest: "/d"},
			root:        map[string]node{"d": {dir: true}},
			want:        map[string]string{"d/a.txt": "file 0644 0:0 A", "d/b.txt": "file 0755 0:0 B"},
			wantWritten: []string{"/d/a.txt", "/d/b.txt"}},
		{name: "glob *.txt",
			req:  Request{Sources: []string{"*.txt"}, Dest: "/d/"},
			want: map[string]string{"d/a.txt": "file 0644 0:0 A", "d/b.txt": "file 0755 0:0 B", "d/c.log": "absent"}},
		{name: "glob matching several needs a dir dest",
			req:     Request{Sources: []string{"*.txt"}, Dest: "/d"},
			wantErr: "more than one source file"},
		{name: "glob matching one to a file",
			req:  Request{Sources: []string{"c.*"}, Dest: "/d"},
			want: map[string]string{"d": "file 0644 0:0 C"}},
		{name: "glob dir/* copies each match, dirs by contents, top symlinks followed",
			req: Request{Sources: []string{"dir/*"}, Dest: "/g/"},
			want: map[string]string{"g/x": "file 0644 0:0 X", "g/y": "file 0644 0:0 Y", "g/sub": "absent",
				"g/link": "file 0644 0:0 X"}},
		{name: "empty glob",
			req:     Request{Sources: []string{"*.nomatch"}, Dest: "/d/"},
			wantErr: "COPY failed: no source files were specified"},
		{name: "no sources",
			req:     Request{Dest: "/d/"},
			wantErr: "COPY failed: no source files were specified"},
		{name: "empty glob next to a match",
			req:  Request{Sources: []string{"*.nomatch", "a.txt"}, Dest: "/d/"},
			want: map[string]string{"d/a.txt": "file 0644 0:0 A"}},
		{name: "missing source",
			req:     Request{Sources: []string{"missing.txt"}, Dest: "/d/"},
			wantErr: "stat missing.txt: file does not exist"},
		{name: "source outside the context",
			req:     Request{Sources: []string{"../x"}, Dest: "/d/"},
			wantErr: "forbidden path outside the build context: ../x"},
		{name: "leading slash is relative to the context",
			req:  Request{Sources: []string{"/a.txt"}, Dest: "/z"},
			want: map[string]string{"z": "file 0644 0:0 A"}},
		{name: "top-level symlink source is followed",
			req:  Request{Sources: []string{"toplink"}, Dest: "/t"},
			want: map[string]string{"t": "file 0644 0:0 A"}},
		{name: "top-level dir symlink source is followed, inner links kept",
			req:  Request{Sources: []string{"dirlink"}, Dest: "/dl"},
			want: map[string]string{"dl/x": "file 0644 0:0 X", "dl/link": "link -> x"}},
		{name: "relative dest is relative to WORKDIR",
			req:  Request{Sources: []string{"a.txt"}, Dest: "rel/", WorkDir: "/w"},
			want: map[string]string{"w/rel/a.txt": "file 0644 0:0 A"}},
		{name: "dot dest is WORKDIR",
			req:  Request{Sources: []string{"a.txt"}, Dest: ".", WorkDir: "/w"},
			want: map[string]string{"w": "dir 0755 0:0", "w/a.txt": "file 0644 0:0 A"}},
		{name: "chown applies to copied entries and created parents",
			req: Request{Sources: []string{"dir"}, Dest: "/new/deep/app", UID: 1000, GID: 2000},
			want: map[string]string{"new": "dir 0755 1000:2000", "new/deep": "dir 0755 1000:2000",
				"new/deep/app": "dir 0750 1000:2000", "new/deep/app/x": "file 0644 1000:2000 X",
				"new/deep/app/sub/y": "file 0644 1000:2000 Y"},
			wantWritten: []string{"/new"}},
		{name: "chown leaves existing parents alone",
			req:  Request{Sources: []string{"a.txt"}, Dest: "/opt/new/", UID: 7, GID: 7},
			root: map[string]node{"opt": {dir: true}},
			want: map[string]string{"opt": "dir 0755 0:0", "opt/new": "dir 0755 7:7", "opt/new/a.txt": "file 0644 7:7 A"}},
		{name: "uid -1 keeps source owners, created parents are root's",
			req: Request{Sources: []string{"dir"}, Dest: "/p/keep", UID: -1, GID: -1},
			want: map[string]string{"p": "dir 0755 0:0", "p/keep": "dir 0750 1000:1000",
				"p/keep/x": "file 0644 1000:1000 X", "p/keep/sub/y": "file 0644 0:0 Y"}},
		{name: "chmod applies to files and dirs",
			req: Request{Sources: []string{"dir"}, Dest: "/m", Mode: fileMode(0o700)},
			want: map[string]string{"m": "dir 0700 0:0", "m/x": "file 0700 0:0 X", "m/sub": "dir 0700 0:0",
				"m/link": "link -> x"}},
		{name: "exec and setuid bits preserved",
			req:  Request{Sources: []string{"b.txt", "s.bin"}, Dest: "/bin/"},
			want: map[string]string{"bin/b.txt": "file 0755 0:0 B", "bin/s.bin": "file 4755 0:0 S"}},
		{name: "file replaces a nested dir",
			req:  Request{Sources: []string{"dir"}, Dest: "/r"},
			root: map[string]node{"r": {dir: true}, "r/x": {dir: true}, "r/x/inner": {data: "I"}},
			want: map[string]string{"r/x": "file 0644 0:0 X", "r/x/inner": "absent"}},
		{name: "dir replaces a file dest",
			req:  Request{Sources: []string{"dir"}, Dest: "/r"},
			root: map[string]node{"r": {data: "old"}},
			want: map[string]string{"r": "dir 0750 0:0", "r/x": "file 0644 0:0 X"}, wantWritten: []string{"/r"}},
		{name: "dir replaces a nested file",
			req:  Request{Sources: []string{"dir"}, Dest: "/r"},
			root: map[string]node{"r": {dir: true}, "r/sub": {data: "old"}},
			want: map[string]string{"r/sub": "dir 0755 0:0", "r/sub/y": "file 0644 0:0 Y"}},
		{name: "existing symlink in the tree is replaced, not followed",
			req:  Request{Sources: []string{"dir"}, Dest: "/r"},
			root: map[string]node{"r": {dir: true}, "r/x": {link: "/kiln-nonexistent-target"}, "r/sub": {link: "/kiln-nonexistent-dir"}},
			want: map[string]string{"r/x": "file 0644 0:0 X", "r/sub": "dir 0755 0:0", "kiln-nonexistent-target": "absent",
				"kiln-nonexistent-dir": "absent"}},
		{name: "symlinked dest dir resolves inside the root",
			req:         Request{Sources: []string{"a.txt"}, Dest: "/app/"},
			root:        map[string]node{"opt/app": {dir: true}, "app": {link: "/opt/app"}},
			want:        map[string]string{"opt/app/a.txt": "file 0644 0:0 A", "app": "link -> /opt/app"},
			wantWritten: []string{"/opt/app/a.txt"}},
		{name: "symlinked dest dir without slash receives the file",
			req:  Request{Sources: []string{"a.txt"}, Dest: "/app"},
			root: map[string]node{"opt/app": {dir: true}, "app": {link: "/opt/app"}},
			want: map[string]string{"opt/app/a.txt": "file 0644 0:0 A", "app": "link -> /opt/app"}},
		{name: "symlinked dest parent",
			req:  Request{Sources: []string{"a.txt"}, Dest: "/app/sub/f.txt"},
			root: map[string]node{"opt/app": {dir: true}, "app": {link: "/opt/app"}},
			want: map[string]string{"opt/app/sub/f.txt": "file 0644 0:0 A"}, wantWritten: []string{"/opt/app/sub"}},
		{name: "dest with slash that is a file",
			req:     Request{Sources: []string{"a.txt"}, Dest: "/f/"},
			root:    map[string]node{"f": {data: "F"}},
			wantErr: "not a directory"},
		{name: "dockerignore with exception",
			req: Request{Sources: []string{"."}, Dest: "/ctx"},
			want: map[string]string{"ctx/a.txt": "file 0644 0:0 A", "ctx/c.log": "absent", "ctx/dir": "dir 0750 0:0",
				"ctx/dir/x": "absent", "ctx/dir/sub/y": "file 0644 0:0 Y"}},
		{name: "explicitly named excluded file is not found",
			req:     Request{Sources: []string{"c.log"}, Dest: "/d/"},
			wantErr: "stat c.log: file does not exist"},
		{name: "explicitly named excluded dir copies its exceptions",
			req:  Request{Sources: []string{"dir"}, Dest: "/e"},
			want: map[string]string{"e/sub/y": "file 0644 0:0 Y", "e/x": "absent", "e/link": "absent"}},
		{name: "glob skips excluded matches",
			req:     Request{Sources: []string{"*.log"}, Dest: "/d/"},
			wantErr: "no source files were specified"},
		{name: "ignored dest is never written",
			req:  Request{Sources: []string{"a.txt"}, Dest: "/ign/", Ignore: underIgn},
			want: map[string]string{"ign": "absent"}, wantWritten: []string{}},
		{name: "ignored entries inside a copy are skipped",
			req:  Request{Sources: []string{"dir"}, Dest: "/", Ignore: func(p string) bool { return p == "/x" }},
			root: map[string]node{"x": {data: "mounted"}},
			want: map[string]string{"x": "file 0644 0:0 mounted", "sub/y": "file 0644 0:0 Y"}},
		{name: "a dir holding an ignored path is not replaced",
			req:     Request{Sources: []string{"dir"}, Dest: "/r", Ignore: func(p string) bool { return p == "/r/x/keep" }},
			root:    map[string]node{"r": {dir: true}, "r/x": {dir: true}, "r/x/keep": {data: "K"}},
			wantErr: "/r/x/keep, which is on the ignore list"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, root := t.TempDir(), t.TempDir()
			build(t, src, contextTree)
			build(t, root, tc.root)
			r := tc.req
			r.SrcRoot, r.Root = src, root
			if strings.Contains(tc.name, "dockerignore") || strings.Contains(tc.name, "excluded") {
				r.Exclude = dockerignore(t, "dir", "!dir/sub", "*.log")
			}
			written, err := Copy(context.Background(), r)
			if tc.wantErr != "" {
				if !errContains(err, tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkTree(t, root, tc.want)
			if tc.wantWritten != nil && !slices.Equal(written, tc.wantWritten) && !(len(written) == 0 && len(tc.wantWritten) == 0) {
				t.Errorf("written %q, want %q", written, tc.wantWritten)
			}
		})
	}
}

func TestCopyMissingIsNotExist(t *testing.T) {
	_, err := Copy(context.Background(), Request{SrcRoot: t.TempDir(), Root: t.TempDir(), Sources: []string{"missing.txt"}, Dest: "/"})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("error %v does not match fs.ErrNotExist", err)
	}
}

// Symlinks in the dest path that point at "/" or climb with ".." must stay in
// the root; the probe names must never appear at the real "/".
func TestCopyDestSymlinksCannotEscape(t *testing.T) {
	requireRoot(t)
	for _, link := range []string{"/", "../../../../../..", "/.."} {
		t.Run(link, func(t *testing.T) {
			src, root := t.TempDir(), t.TempDir()
			build(t, src, contextTree)
			build(t, root, map[string]node{"link": {link: link}})
			probe := "kiln-escape-probe-" + filepath.Base(root)
			written, err := Copy(context.Background(), Request{SrcRoot: src, Root: root, Sources: []string{"a.txt"}, Dest: "/link/" + probe + "/f"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat("/" + probe); err == nil {
				os.RemoveAll("/" + probe)
				t.Fatalf("COPY escaped the root: /%s was created", probe)
			}
			checkTree(t, root, map[string]string{probe + "/f": "file 0644 0:0 A", "link": "link -> " + link})
			if !slices.Equal(written, []string{"/" + probe}) {
				t.Errorf("written %q", written)
			}
		})
	}
}

func TestCopyPreservesTimes(t *testing.T) {
	requireRoot(t)
	src, root := t.TempDir(), t.TempDir()
	build(t, src, contextTree)
	if _, err := Copy(context.Background(), Request{SrcRoot: src, Root: root, Sources: []string{"dir"}, Dest: "/app"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"app", "app/x", "app/sub", "app/sub/y", "app/link"} {
		if got := mtime(t, root, p); !got.Equal(testTime) {
			t.Errorf("%s: mtime %v, want %v", p, got, testTime)
		}
	}
}

func TestCopyKeepsHardLinks(t *testing.T) {
	src, root := t.TempDir(), t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "one"), []byte("data"), 0o644))
	must(t, os.Link(filepath.Join(src, "one"), filepath.Join(src, "two")))
	if _, err := Copy(context.Background(), Request{SrcRoot: src, Root: root, Sources: []string{"."}, Dest: "/h/"}); err != nil {
		t.Fatal(err)
	}
	a, err := os.Stat(filepath.Join(root, "h/one"))
	must(t, err)
	b, err := os.Stat(filepath.Join(root, "h/two"))
	must(t, err)
	if !os.SameFile(a, b) {
		t.Error("h/one and h/two are separate files; want one inode")
	}
}

func TestCopyFifo(t *testing.T) {
	requireRoot(t)
	src, root := t.TempDir(), t.TempDir()
	must(t, mkfifo(filepath.Join(src, "pipe")))
	if _, err := Copy(context.Background(), Request{SrcRoot: src, Root: root, Sources: []string{"."}, Dest: "/"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(filepath.Join(root, "pipe"))
	must(t, err)
	if fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Errorf("pipe copied as %v", fi.Mode())
	}
}

func TestCopyCancelled(t *testing.T) {
	src, root := t.TempDir(), t.TempDir()
	build(t, src, contextTree)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Copy(ctx, Request{SrcRoot: src, Root: root, Sources: []string{"dir"}, Dest: "/app"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

// Two copies at once share nothing (run with -race).
func TestCopyConcurrent(t *testing.T) {
	src := t.TempDir()
	build(t, src, contextTree)
	var wg sync.WaitGroup
	roots := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	for _, root := range roots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := Copy(context.Background(), Request{SrcRoot: src, Root: root, Sources: []string{"."}, Dest: "/c/"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, root := range roots {
		checkTree(t, root, map[string]string{"c/dir/sub/y": "file 0644 0:0 Y"})
	}
}

// TestCopyEmptySourceIsAnError: "" never means the whole source root.
func TestCopyEmptySourceIsAnError(t *testing.T) {
	src, root := t.TempDir(), t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "f"), []byte("f"), 0o644))
	_, err := Copy(context.Background(), Request{SrcRoot: src, Root: root, Sources: []string{""}, Dest: "/d/"})
	if err == nil || !strings.Contains(err.Error(), "empty source") {
		t.Fatalf("Copy of an empty source: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "d", "f")); err == nil {
		t.Fatal("the whole source root was copied")
	}
}
