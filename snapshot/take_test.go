package snapshot

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestTakeGolden checks the exact entry list of the layer for each kind of change.
func TestTakeGolden(t *testing.T) {
	requireRoot(t)
	cases := []struct {
		name   string
		setup  func(f fsOps)
		change func(f fsOps)
		opts   []Option
		want   []string
	}{
		{
			name:   "new file",
			setup:  func(f fsOps) { f.mkdir("/d", 0o755) },
			change: func(f fsOps) { f.write("/d/f", "hi", 0o644) },
			want:   []string{"d/ 5 0755 0:0", `d/f 0 0644 0:0 2 "hi"`},
		},
		{
			name:   "modified file",
			setup:  func(f fsOps) { f.write("/d/f", "a", 0o644); f.write("/d/g", "g", 0o644) },
			change: func(f fsOps) { f.write("/d/f", "bb", 0o644) },
			want:   []string{"d/ 5 0755 0:0", `d/f 0 0644 0:0 2 "bb"`},
		},
		{
			name:   "chmod only",
			setup:  func(f fsOps) { f.write("/f", "x", 0o644) },
			change: func(f fsOps) { f.must(os.Chmod(f.host("/f"), 0o600)) },
			want:   []string{`f 0 0600 0:0 1 "x"`},
		},
		{
			name:   "chown only",
			setup:  func(f fsOps) { f.write("/f", "x", 0o644) },
			change: func(f fsOps) { f.must(os.Lchown(f.host("/f"), 1000, 1001)) },
			want:   []string{`f 0 0644 1000:1001 1 "x"`},
		},
		{
			name:   "deleted file becomes a whiteout",
			setup:  func(f fsOps) { f.write("/d/f", "x", 0o644); f.write("/d/g", "y", 0o644) },
			change: func(f fsOps) { f.must(os.Remove(f.host("/d/f"))) },
			want:   []string{"d/ 5 0755 0:0", `d/.wh.f 0 0644 0:0 0 ""`},
		},
		{
			name: "deleted dir becomes a single whiteout",
			setup: func(f fsOps) {
				f.write("/d/e/x", "x", 0o644)
				f.write("/d/e/sub/y", "y", 0o644)
			},
			change: func(f fsOps) { f.must(os.RemoveAll(f.host("/d/e"))) },
			want:   []string{"d/ 5 0755 0:0", `d/.wh.e 0 0644 0:0 0 ""`},
		},
		{
			name: "dir replaced wholesale becomes opaque",
			setup: func(f fsOps) {
				f.write("/d/x", "x", 0o644)
				f.write("/d/y", "y", 0o644)
			},
			change: func(f fsOps) {
				// Build the new dir first so it cannot reuse the old inode.
				f.write("/d.new/z", "z", 0o644)
				f.must(os.RemoveAll(f.host("/d")))
				f.must(os.Rename(f.host("/d.new"), f.host("/d")))
			},
			want: []string{"d/ 5 0755 0:0", `d/.wh..wh..opq 0 0644 0:0 0 ""`, `d/z 0 0644 0:0 1 "z"`},
		},
		{
			name:  "file replaced by dir and dir by file",
			setup: func(f fsOps) { f.write("/p", "file", 0o644); f.write("/r/s", "s", 0o644) },
			change: func(f fsOps) {
				f.must(os.Remove(f.host("/p")))
				f.write("/p/q", "q", 0o644)
				f.must(os.RemoveAll(f.host("/r")))
				f.write("/r", "now a file", 0o600)
			},
			want: []string{"p/ 5 0755 0:0", `p/q 0 0644 0:0 1 "q"`, `r 0 0600 0:0 10 "now a file"`},
		},
		{
			name:   "symlink is stored, never followed",
			setup:  func(f fsOps) {},
			change: func(f fsOps) { f.must(os.Symlink("/etc/passwd", f.host("/l"))) },
			want:   []string{"l 2 0777 0:0 -> /etc/passwd"},
		},
		{
			name:  "hardlink pair",
			setup: func(f fsOps) { f.mkdir("/d", 0o755) },
			change: func(f fsOps) {
				f.write("/d/a", "same", 0o644)
				f.must(os.Link(f.host("/d/a"), f.host("/d/b")))
			},
			want: []string{"d/ 5 0755 0:0", `d/a 0 0644 0:0 4 "same"`, "d/b 1 0644 0:0 -> d/a"},
		},
		{
			name:   "fifo",
			setup:  func(f fsOps) {},
			change: func(f fsOps) { f.must(unix.Mkfifo(f.host("/fifo"), 0o640)) },
			want:   []string{"fifo 6 0640 0:0"},
		},
		{
			name:  "char device",
			setup: func(f fsOps) {},
			change: func(f fsOps) {
				f.must(unix.Mknod(f.host("/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
				f.must(os.Chmod(f.host("/null"), 0o666))
			},
			want: []string{"null 3 0666 0:0 1,3"},
		},
		{
			name:  "setuid, setgid and sticky modes",
			setup: func(f fsOps) {},
			change: func(f fsOps) {
				f.write("/bin/su", "su", 0o755)
				f.must(os.Chmod(f.host("/bin/su"), 0o755|os.ModeSetuid|os.ModeSetgid))
				f.mkdir("/tmp", 0o777)
				f.must(os.Chmod(f.host("/tmp"), 0o777|os.ModeSticky))
				f.must(os.Chmod(f.host("/bin"), 0o755))
			},
			want: []string{"bin/ 5 0755 0:0", `bin/su 0 6755 0:0 2 "su"`, "tmp/ 5 1777 0:0"},
		},
		{
			name:  "ignored path never appears",
			setup: func(f fsOps) { f.mkdir("/ign", 0o755) },
			change: func(f fsOps) {
				f.write("/ign/x", "x", 0o644)
				f.write("/ign/sub/y", "y", 0o644)
				f.write("/ok", "ok", 0o644)
			},
			opts: []Option{WithIgnore(func(p string) bool { return p == "/ign" })},
			want: []string{`ok 0 0644 0:0 2 "ok"`},
		},
		{
			name:  "sorted, parents before children",
			setup: func(f fsOps) {},
			change: func(f fsOps) {
				f.write("/a-b", "1", 0o644)
				f.write("/a/b", "2", 0o644)
				f.write("/a/-c", "3", 0o644)
			},
			want: []string{"a/ 5 0755 0:0", `a/-c 0 0644 0:0 1 "3"`, `a/b 0 0644 0:0 1 "2"`, `a-b 0 0644 0:0 1 "1"`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			f := fsOps{t: t, root: root}
			tc.setup(f)
			s := New(root, append([]Option{WithLayerDir(t.TempDir())}, tc.opts...)...)
			if err := s.Reset(context.Background()); err != nil {
				t.Fatal(err)
			}
			tc.change(f)
			l, err := s.Take(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			assertLines(t, layerEntries(t, l), tc.want)
			// The new state is the baseline: a second Take finds nothing.
			l2, err := s.Take(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if l2 != nil {
				t.Fatalf("second Take found changes: %v", layerEntries(t, l2))
			}
		})
	}
}

func TestTakeNothingChangedIsNil(t *testing.T) {
	root := t.TempDir()
	f := fsOps{t: t, root: root}
	f.write("/a/b", "x", 0o644)
	s := New(root, WithLayerDir(t.TempDir()))
	if err := s.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	l, err := s.Take(context.Background())
	if err != nil || l != nil {
		t.Fatalf("Take on an unchanged root = %v, %v; want nil, nil", l, err)
	}
}

func TestTakeXattrs(t *testing.T) {
	root := t.TempDir()
	f := fsOps{t: t, root: root}
	s := New(root, WithLayerDir(t.TempDir()))
	if err := s.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.write("/f", "x", 0o644)
	if err := unix.Lsetxattr(f.host("/f"), "user.kiln", []byte("v1"), 0); err != nil {
		t.Skipf("filesystem of %s lacks user.* xattrs: %v", root, err)
	}
	want := `f 0 0644 0:0 1 "x" xattr[user.kiln=v1]`
	// security.capability needs root; cap_net_bind_service+ep as a VFS v2 blob.
	capBlob := []byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if err := unix.Lsetxattr(f.host("/f"), "security.capability", capBlob, 0); err == nil {
		want = `f 0 0644 0:0 1 "x" xattr[security.capability=` + string(capBlob) + `,user.kiln=v1]`
	} else {
		t.Logf("security.capability not settable here (%v); checking user.* only", err)
	}
	l, err := s.Take(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	assertLines(t, layerEntries(t, l), []string{want})

	// An xattr change alone (ctime moves) is a change.
	if err := unix.Lsetxattr(f.host("/f"), "user.kiln", []byte("v2"), 0); err != nil {
		t.Fatal(err)
	}
	l, err = s.Take(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := layerEntries(t, l)
	if len(got) != 1 || !strings.Contains(got[0], "user.kiln=v2") {
		t.Fatalf("xattr change not captured: %v", got)
	}
}

func TestTakeTarFormat(t *testing.T) {
	root := t.TempDir()
	f := fsOps{t: t, root: root}
	s := New(root, WithLayerDir(t.TempDir()))
	f.write("/d/f", "x", 0o644)
	l, err := s.Take(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	for _, e := range readTar(t, rc) {
		h := e.hdr
		if h.Name[0] == '/' || h.Name[:2] == "./" {
			t.Errorf("entry %q is not a clean relative name", h.Name)
		}
		if !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
			t.Errorf("entry %q carries atime/ctime", h.Name)
		}
		if h.Uname != "" || h.Gname != "" {
			t.Errorf("entry %q carries user names %q/%q", h.Name, h.Uname, h.Gname)
		}
		st, err := os.Lstat(filepath.Join(root, h.Name))
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(st.ModTime()) {
			t.Errorf("entry %q mtime %v, file has %v", h.Name, h.ModTime, st.ModTime())
		}
	}
}
