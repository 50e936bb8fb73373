package runner

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// busyboxApplets are linked into every test root.
var busyboxApplets = []string{"sh", "ls", "cat", "id", "echo", "touch", "sleep", "hostname", "mount", "ps", "test", "readlink", "stat", "pwd", "rm", "kill", "grep", "head", "wc"}

// needRoot skips tests that need root, saying so.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("directory mode needs root (namespaces, mounts); this machine runs the test unprivileged")
	}
}

// makeRoot builds a tiny image root in a temp dir: /bin/busybox and its
// applet symlinks, and nothing else (no /proc, /dev, /sys or /etc).
func makeRoot(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("needs a static /bin/busybox (Debian busybox-static) to build test roots: %v", err)
	}
	root := t.TempDir()
	bin := filepath.Join(root, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range busyboxApplets {
		if err := os.Symlink("busybox", filepath.Join(bin, a)); err != nil {
			t.Fatal(err)
		}
	}
	// Stable times, so a comparison cannot pass by luck of the clock.
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	for _, p := range []string{bin, root} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// result is the outcome of one run in a test.
type result struct {
	out, err string
	runErr   error
}

// run runs args in root as root with a sane PATH and a 30 s timeout.
func run(t *testing.T, root string, mod func(*Spec), args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	s := Spec{
		Root:   root,
		Args:   args,
		Env:    []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Stdout: &stdout,
		Stderr: &stderr,
	}
	if mod != nil {
		mod(&s)
	}
	err := Run(ctx, s)
	return result{out: stdout.String(), err: stderr.String(), runErr: err}
}

// mustRun is run that fails the test on any error.
func mustRun(t *testing.T, root string, mod func(*Spec), args ...string) string {
	t.Helper()
	r := run(t, root, mod, args...)
	if r.runErr != nil {
		t.Fatalf("Run %q: %v (stderr %q)", args, r.runErr, r.err)
	}
	return r.out
}

// listing describes every entry below root with type, mode, owner, size
// and mtime (nanoseconds), one line each, sorted.
func listing(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		lines = append(lines, fmt.Sprintf("%s mode=%o uid=%d gid=%d size=%d mtime=%d.%09d",
			rel, st.Mode, st.Uid, st.Gid, st.Size, st.Mtim.Sec, st.Mtim.Nsec))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
