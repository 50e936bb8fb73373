package rootstate

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// Merge copies the chain (bottom layer first, each one Has) into root, an empty directory,
// applying each layer's whiteouts and opaque directories as unpacking it would. The copies
// are full copies (cloned where the file system can, else copy_file_range), never hardlinks:
// a RUN writing a file in place must not change the kept layer. Files are copied by a few
// workers while the walk goes on; directories get their metadata once a layer is done.
func (s *Store) Merge(root string, chain []v1.Hash) error {
	noClone := &atomic.Bool{}
	for _, d := range chain {
		m := newMerger(noClone)
		err := m.dir(s.Dir(d), root)
		if err = errors.Join(err, m.finish()); err != nil {
			return fmt.Errorf("layer %s: %w", d, err)
		}
	}
	return nil
}

// mergeWorkers is how many files are copied at once: copying is system calls, and two cores
// issue them about twice as fast.
var mergeWorkers = min(runtime.NumCPU(), 4)

// merger applies one layer directory.
type merger struct {
	jobs    chan func() error
	wg      sync.WaitGroup
	mu      sync.Mutex
	errs    []error
	noClone *atomic.Bool

	// Owned by the walk: multiply-linked inodes to their first copy, the links to make
	// once the copies are done, and the directories whose metadata comes last.
	links     map[uint64]string
	linksTodo [][2]string
	dirs      []dirMeta
}

type dirMeta struct {
	src, dst string
	st       unix.Stat_t
}

func newMerger(noClone *atomic.Bool) *merger {
	m := &merger{jobs: make(chan func() error), links: map[uint64]string{}, noClone: noClone}
	for range mergeWorkers {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			for job := range m.jobs {
				if err := job(); err != nil {
					m.mu.Lock()
					m.errs = append(m.errs, err)
					m.mu.Unlock()
				}
			}
		}()
	}
	return m
}

// finish waits for the copies, then makes the hardlinks and sets the directories' metadata,
// children before parents.
func (m *merger) finish() error {
	close(m.jobs)
	m.wg.Wait()
	if err := errors.Join(m.errs...); err != nil {
		return err
	}
	for _, l := range m.linksTodo {
		if err := os.RemoveAll(l[1]); err != nil {
			return err
		}
		if err := os.Link(l[0], l[1]); err != nil {
			return err
		}
	}
	for i := len(m.dirs) - 1; i >= 0; i-- {
		d := &m.dirs[i]
		if err := copyMetadata(d.src, d.dst, &d.st); err != nil {
			return err
		}
	}
	return nil
}

// dir applies the children of src onto dst, an existing directory.
func (m *merger) dir(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := m.entry(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func (m *merger) entry(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	mode := st.Mode & unix.S_IFMT
	if mode == unix.S_IFCHR && st.Rdev == 0 { // a whiteout
		return os.RemoveAll(dst)
	}
	if mode == unix.S_IFDIR {
		return m.directory(src, dst, &st)
	}
	if mode == unix.S_IFREG && st.Nlink > 1 {
		if first, ok := m.links[st.Ino]; ok {
			m.linksTodo = append(m.linksTodo, [2]string{first, dst})
			return nil
		}
		m.links[st.Ino] = dst
	}
	m.jobs <- func() error { return m.nonDir(src, dst, &st) }
	return nil
}

// directory makes dst a directory (emptied when src is opaque) and applies src's children.
func (m *merger) directory(src, dst string, st *unix.Stat_t) error {
	var cur unix.Stat_t
	exists := unix.Lstat(dst, &cur) == nil
	switch {
	case exists && cur.Mode&unix.S_IFMT == unix.S_IFDIR:
		if isOpaque(src) {
			if err := clearDir(dst); err != nil {
				return err
			}
		}
	case exists:
		if err := os.RemoveAll(dst); err != nil {
			return err
		}
		exists = false
	}
	if !exists {
		if err := os.Mkdir(dst, 0o700); err != nil {
			return err
		}
	}
	m.dirs = append(m.dirs, dirMeta{src: src, dst: dst, st: *st})
	return m.dir(src, dst)
}

// nonDir replaces whatever dst is with a copy of src (a file, symlink or device).
func (m *merger) nonDir(src, dst string, st *unix.Stat_t) error {
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if err := copyFile(src, dst, m.noClone); err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	default:
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return err
		}
	}
	return copyMetadata(src, dst, st)
}

func isOpaque(dir string) bool {
	buf := make([]byte, 4)
	n, err := unix.Lgetxattr(dir, opaqueXattr, buf)
	return err == nil && string(buf[:n]) == "y"
}

func clearDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// copyFile copies src's content into a new file dst: a clone where the file system shares
// blocks (FICLONE), else copy_file_range (what io.Copy between files uses on Linux).
func copyFile(src, dst string, noClone *atomic.Bool) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	cloned := false
	if !noClone.Load() {
		if err := unix.IoctlFileClone(int(out.Fd()), int(in.Fd())); err == nil {
			cloned = true
		} else if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) {
			noClone.Store(true) // this file system cannot share blocks: do not ask again
		}
	}
	if !cloned {
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
	}
	return out.Close()
}

// copyMetadata gives dst src's owner, mode, xattrs (not overlayfs' own) and times.
func copyMetadata(src, dst string, st *unix.Stat_t) error {
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	isLink := st.Mode&unix.S_IFMT == unix.S_IFLNK
	if !isLink {
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return err
		}
	}
	if err := copyXattrs(src, dst); err != nil && !isLink {
		return err
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func copyXattrs(src, dst string) error {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(src, buf)
	if err != nil || n == 0 {
		return nil // no xattrs, or a file system without them
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if name == "" || strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		val := make([]byte, 64<<10)
		vn, err := unix.Lgetxattr(src, name, val)
		if err != nil {
			return fmt.Errorf("xattr %s of %s: %w", name, src, err)
		}
		if err := unix.Lsetxattr(dst, name, val[:vn], 0); err != nil {
			return fmt.Errorf("xattr %s of %s: %w", name, dst, err)
		}
	}
	return nil
}
