package copier

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// meta is what an entry written into the root should end up with.
type meta struct {
	uid, gid int
	mode     fs.FileMode // permission and special bits; unused for symlinks
	mtime    time.Time
	symlink  bool
}

// metaFor derives an entry's metadata from its source.
func (j *job) metaFor(fi fs.FileInfo) meta {
	uid, gid := j.owner(fi)
	return meta{uid: uid, gid: gid, mode: j.mode(fi.Mode()), mtime: fi.ModTime(),
		symlink: fi.Mode()&fs.ModeSymlink != 0}
}

// apply sets owner then mode on host: chown clears setuid bits, so chmod
// comes after it. Callers set xattrs (chown drops security.capability)
// and then times.
func (m meta) apply(host string) error {
	if err := os.Lchown(host, m.uid, m.gid); err != nil {
		return err
	}
	if !m.symlink {
		return os.Chmod(host, m.mode)
	}
	return nil
}

// setTimes sets atime and mtime without following a symlink.
func setTimes(host string, t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	return unix.UtimesNanoAt(unix.AT_FDCWD, host, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

// differs reports whether an existing directory's metadata differs from m.
func (m meta) differs(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	return int(st.Uid) != m.uid || int(st.Gid) != m.gid || fi.Mode()&permBits != m.mode ||
		!fi.ModTime().Equal(m.mtime)
}

// copyXattrs copies extended attributes (notably security.capability) from
// src to dst. Attributes the destination filesystem cannot hold are skipped,
// except security.capability, whose loss would break the image.
func copyXattrs(src, dst string) error {
	size, err := unix.Llistxattr(src, nil)
	if err != nil || size == 0 {
		return nil // no xattrs or not supported at the source
	}
	buf := make([]byte, size)
	size, err = unix.Llistxattr(src, buf)
	if err != nil {
		return nil
	}
	for _, name := range splitNul(buf[:size]) {
		val, err := getXattr(src, name)
		if err != nil {
			continue
		}
		if err := unix.Lsetxattr(dst, name, val, 0); err != nil {
			if name == "security.capability" || !(errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM)) {
				return fmt.Errorf("set xattr %s: %w", name, err)
			}
		}
	}
	return nil
}

func getXattr(p, name string) ([]byte, error) {
	n, err := unix.Lgetxattr(p, name, nil)
	if err != nil {
		return nil, err
	}
	val := make([]byte, n)
	n, err = unix.Lgetxattr(p, name, val)
	if err != nil {
		return nil, err
	}
	return val[:n], nil
}

func splitNul(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == 0 {
			if i > start {
				out = append(out, string(b[start:i]))
			}
			start = i + 1
		}
	}
	return out
}
