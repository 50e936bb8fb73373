package builder

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestIgnoreList(t *testing.T) {
	l := newIgnoreList([]string{"/kaniko", "/etc/hosts", "proc", "/var/run/", "/"})
	for p, want := range map[string]bool{
		"/kaniko": true, "/kaniko/x": true, "/kanikox": false, "/etc/hosts": true, "/etc": false,
		"/proc/1": true, "/var/run": true, "/var": false, "/": false,
	} {
		if got := l.Ignored(p); got != want {
			t.Errorf("Ignored(%q) = %v, want %v", p, got, want)
		}
	}
	if !l.HasBelow("/etc") || !l.HasBelow("/var") || l.HasBelow("/usr") || l.HasBelow("/kaniko") {
		t.Errorf("HasBelow answers wrong for %v", l.paths)
	}
}

func TestExposedPorts(t *testing.T) {
	got, err := exposedPorts([]string{"80", "53/udp", "8000-8002/TCP"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"53/udp", "80/tcp", "8000/tcp", "8001/tcp", "8002/tcp"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
	for _, bad := range []string{"http", "80/xyz", "9-3", "70000"} {
		if _, err := exposedPorts([]string{bad}); err == nil {
			t.Errorf("EXPOSE %s: expected an error", bad)
		}
	}
}

func TestFirstMissing(t *testing.T) {
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "opt/app"), 0o755))
	must(t, os.Symlink("/opt/app", filepath.Join(root, "app")))
	must(t, os.Symlink("/", filepath.Join(root, "up")))
	for p, want := range map[string]string{
		"/opt/app":      "",
		"/opt/app/x/y":  "/opt/app/x",
		"/app/new":      "/opt/app/new",
		"/up/up/escape": "/escape",
		"/fresh/a/b":    "/fresh",
	} {
		got, err := firstMissing(root, p)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("firstMissing(%q) = %q, want %q", p, got, want)
		}
	}
}

func TestMoveAsideKeepsIgnoredPaths(t *testing.T) {
	root, dst := t.TempDir(), filepath.Join(t.TempDir(), "saved")
	must(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "etc/hosts"), []byte("mount"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root"), 0o644))
	must(t, os.MkdirAll(filepath.Join(root, "kaniko/layers"), 0o755))
	must(t, os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	must(t, os.Symlink("usr/bin", filepath.Join(root, "bin")))
	ig := newIgnoreList([]string{"/etc/hosts", "/kaniko"})
	must(t, moveAside(root, dst, ig))
	for _, p := range []string{"etc/hosts", "kaniko/layers", "etc"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
			t.Errorf("%s should remain in the root: %v", p, err)
		}
	}
	for _, p := range []string{"etc/passwd", "usr/bin", "bin"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s should have moved out of the root", p)
		}
		if _, err := os.Lstat(filepath.Join(dst, p)); err != nil {
			t.Errorf("%s should be in the saved dir: %v", p, err)
		}
	}
	for _, p := range []string{"etc/hosts", "kaniko"} {
		if _, err := os.Lstat(filepath.Join(dst, p)); err == nil {
			t.Errorf("ignored %s must not be saved", p)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestDirectoryModeRejectsWorkDirInsideRoot(t *testing.T) {
	root := t.TempDir()
	o := defaults()
	WithDirectoryRoot(root)(&o)
	WithWorkDir(filepath.Join(root, "work"))(&o)
	if _, err := newBuild(o); err == nil || !strings.Contains(err.Error(), "inside the root") {
		t.Fatalf("newBuild = %v, want an error about the work dir inside the root", err)
	}
	WithWorkDir(root + ".work")(&o)
	if _, err := newBuild(o); err != nil {
		t.Fatalf("a work dir next to the root must be accepted: %v", err)
	}
	WithDirectoryRoot("/")(&o)
	if _, err := newBuild(o); err == nil {
		t.Fatalf("a directory root of / must be refused")
	}
}

// The cross-filesystem fallback of moveAside keeps what the stage's files are: content,
// modes with setuid, owners, mtimes, symlinks not followed.
func TestCopyEntryKeepsMetadata(t *testing.T) {
	root, dst := t.TempDir(), t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "usr/bin"), 0o750))
	must(t, os.WriteFile(filepath.Join(root, "usr/bin/tool"), []byte("tool"), 0o755))
	must(t, os.Chown(filepath.Join(root, "usr/bin/tool"), 1234, 5678)) // before chmod: chown clears setuid
	must(t, os.Chmod(filepath.Join(root, "usr/bin/tool"), 0o755|os.ModeSetuid))
	mtime := time.Unix(1700000000, 0)
	must(t, os.Chtimes(filepath.Join(root, "usr/bin/tool"), mtime, mtime))
	must(t, os.Symlink("usr/bin", filepath.Join(root, "bin")))
	for _, p := range []string{"/usr", "/bin"} {
		if err := copyEntry(root, dst, p); err != nil {
			t.Fatalf("copyEntry %s: %v", p, err)
		}
	}
	fi, err := os.Lstat(filepath.Join(dst, "usr/bin/tool"))
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode()&os.ModeSetuid == 0 || fi.Mode().Perm() != 0o755 || st.Uid != 1234 || st.Gid != 5678 || !fi.ModTime().Equal(mtime) {
		t.Errorf("usr/bin/tool copied as %v %d:%d %v", fi.Mode(), st.Uid, st.Gid, fi.ModTime())
	}
	if dfi, _ := os.Lstat(filepath.Join(dst, "usr/bin")); dfi == nil || dfi.Mode().Perm() != 0o750 {
		t.Errorf("usr/bin mode not kept: %v", dfi)
	}
	if target, err := os.Readlink(filepath.Join(dst, "bin")); err != nil || target != "usr/bin" {
		t.Errorf("bin must stay a symlink to usr/bin: %q %v", target, err)
	}
}
