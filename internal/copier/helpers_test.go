package copier

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// node describes a filesystem entry to create in a test tree.
type node struct {
	data     string      // file contents
	dir      bool        // a directory
	link     string      // a symlink target
	mode     fs.FileMode // 0 means 0644 for files, 0755 for dirs
	uid, gid int
}

var testTime = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

// build creates nodes under root (parents first, as sorted paths allow) and
// sets every entry's mtime to testTime.
func build(t *testing.T, root string, nodes map[string]node) {
	t.Helper()
	paths := make([]string, 0, len(nodes))
	for p := range nodes {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		n := nodes[p]
		host := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case n.link != "":
			must(t, os.Symlink(n.link, host))
		case n.dir:
			must(t, os.MkdirAll(host, 0o755))
		default:
			must(t, os.WriteFile(host, []byte(n.data), 0o600))
		}
		must(t, os.Lchown(host, n.uid, n.gid))
		// chmod after chown, which clears setuid.
		if n.dir {
			must(t, os.Chmod(host, orDefault(n.mode, 0o755)))
		} else if n.link == "" {
			must(t, os.Chmod(host, orDefault(n.mode, 0o644)))
		}
	}
	// Times after all writes, deepest first, so directories keep theirs.
	for i := len(paths) - 1; i >= 0; i-- {
		must(t, setTimes(filepath.Join(root, paths[i]), testTime))
	}
}

func orDefault(m, d fs.FileMode) fs.FileMode {
	if m == 0 {
		return d
	}
	return m
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// describe returns a one-line summary of the entry at root/p, or "absent":
// "file 0644 0:0 data", "dir 0755 0:0", "link -> target".
func describe(root, p string) string {
	host := filepath.Join(root, p)
	fi, err := os.Lstat(host)
	if err != nil {
		return "absent"
	}
	st := fi.Sys().(*syscall.Stat_t)
	perm := fi.Mode() & permBits
	mode := fmt.Sprintf("%04o", uint32(perm.Perm())|specialBits(perm))
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, _ := os.Readlink(host)
		return "link -> " + target
	case fi.IsDir():
		return fmt.Sprintf("dir %s %d:%d", mode, st.Uid, st.Gid)
	case fi.Mode().IsRegular():
		b, _ := os.ReadFile(host)
		return fmt.Sprintf("file %s %d:%d %s", mode, st.Uid, st.Gid, b)
	}
	return "other " + fi.Mode().String()
}

func specialBits(m fs.FileMode) uint32 {
	var b uint32
	if m&fs.ModeSetuid != 0 {
		b |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		b |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}

func mtime(t *testing.T, root, p string) time.Time {
	t.Helper()
	fi, err := os.Lstat(filepath.Join(root, p))
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime()
}

// checkTree asserts each path's description.
func checkTree(t *testing.T, root string, want map[string]string) {
	t.Helper()
	for p, w := range want {
		if got := describe(root, p); got != w {
			t.Errorf("%s: got %q, want %q", p, got, w)
		}
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the tests chown files to arbitrary owners")
	}
}

func fileMode(m fs.FileMode) *fs.FileMode { return &m }

func errContains(err error, want string) bool {
	return err != nil && strings.Contains(err.Error(), want)
}
