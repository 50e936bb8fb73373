package snapshot

import (
	"context"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRoundTrip extracts a base layer and two change layers into a fresh root and expects a
// tree identical to the one they were taken from, metadata included.
func TestRoundTrip(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	for _, comp := range []Compression{{}, {Algorithm: "zstd"}} {
		t.Run("compression="+comp.Algorithm, func(t *testing.T) {
			src := t.TempDir()
			f := fsOps{t: t, root: src}
			s := New(src, WithLayerDir(t.TempDir()), WithCompression(comp))
			var layers []*Layer
			take := func() {
				t.Helper()
				l, err := s.Take(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if l == nil {
					t.Fatal("Take found no changes")
				}
				layers = append(layers, l)
			}
			xattrs := unix.Lsetxattr(src, "user.probe", []byte("1"), 0) == nil
			if xattrs {
				f.must(unix.Lremovexattr(src, "user.probe"))
			}

			// Base tree: the first Take (no Reset) captures all of it.
			f.write("/etc/passwd", "root:x:0:0", 0o644)
			f.write("/etc/conf.d/a", "a", 0o644)
			f.write("/etc/conf.d/b", "b", 0o644)
			f.write("/bin/su", "su", 0o755)
			f.must(os.Chmod(f.host("/bin/su"), 0o755|os.ModeSetuid))
			f.mkdir("/tmp", 0o777)
			f.must(os.Chmod(f.host("/tmp"), 0o777|os.ModeSticky))
			f.write("/var/lib/x/data", "d", 0o600)
			f.write("/opt/replace/x", "x", 0o644)
			f.write("/opt/replace/y", "y", 0o644)
			f.write("/p", "p-file", 0o644)
			f.write("/r/s", "s", 0o644)
			f.must(os.Symlink("/etc", f.host("/sl")))
			f.write("/h1", "linked", 0o644)
			f.must(os.Link(f.host("/h1"), f.host("/h2")))
			f.mkdir("/dev", 0o755)
			f.must(unix.Mknod(f.host("/dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
			f.must(unix.Mkfifo(f.host("/fifo"), 0o600))
			f.write("/u", "u", 0o640)
			f.must(os.Lchown(f.host("/u"), 1000, 1000))
			f.write("/x", "x", 0o644)
			if xattrs {
				f.must(unix.Lsetxattr(f.host("/x"), "user.a", []byte("1"), 0))
			}
			take()

			// Layer 1: every kind of change.
			f.write("/etc/passwd", "root:x:0:0\nkiln:x:1000:1000", 0o644)
			f.must(os.Remove(f.host("/etc/conf.d/a")))
			f.must(os.Lchown(f.host("/etc/conf.d/b"), 5, 6))
			f.must(os.RemoveAll(f.host("/var/lib")))
			f.write("/opt/replace.new/z", "z", 0o644)
			f.must(os.RemoveAll(f.host("/opt/replace")))
			f.must(os.Rename(f.host("/opt/replace.new"), f.host("/opt/replace")))
			f.must(os.Remove(f.host("/p")))
			f.write("/p/inside", "i", 0o644)
			f.must(os.RemoveAll(f.host("/r")))
			f.write("/r", "r-file", 0o600)
			f.must(os.Remove(f.host("/sl")))
			f.write("/sl/real", "real", 0o644)
			f.must(os.Chmod(f.host("/u"), 0o600))
			f.must(os.Link(f.host("/h1"), f.host("/h3")))
			f.must(os.Symlink("../etc/passwd", f.host("/bin/pw")))
			if xattrs {
				f.must(unix.Lsetxattr(f.host("/x"), "user.a", []byte("2"), 0))
				f.must(unix.Lsetxattr(f.host("/x"), "user.b", []byte("3"), 0))
			}
			f.mkdir("/srv/shared", 0o2775)
			f.must(os.Chmod(f.host("/srv/shared"), 0o775|os.ModeSetgid|os.ModeSticky))
			take()

			// Layer 2: deletes, recreations, a hardlinked file rewritten in place.
			f.must(os.RemoveAll(f.host("/opt")))
			f.write("/var/lib/x/data", "again", 0o644)
			f.must(os.WriteFile(f.host("/h1"), []byte("rewritten"), 0o644))
			f.must(os.Remove(f.host("/fifo")))
			f.must(os.Symlink("/nowhere", f.host("/fifo")))
			take()

			dst := t.TempDir()
			for _, l := range layers {
				extractLayer(t, dst, l)
			}
			want, got := listing(t, src), listing(t, dst)
			if strings.Join(want, "\n") != strings.Join(got, "\n") {
				t.Fatalf("extracted tree differs\nsource:\n  %s\nextracted:\n  %s", strings.Join(want, "\n  "), strings.Join(got, "\n  "))
			}
		})
	}
}
