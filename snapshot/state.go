package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// record is the stat data that decides whether a path changed between two walks.
type record struct {
	mode  uint32 // st_mode: type and permission bits
	size  int64
	mtime int64 // nanoseconds since the epoch
	ctime int64 // nanoseconds since the epoch; catches chmod, chown and xattr changes
	ino   uint64
	dev   uint64
	rdev  uint64
	uid   uint32
	gid   uint32
	nlink uint64
	link  string // symlink target
}

func (r record) isDir() bool     { return r.mode&unix.S_IFMT == unix.S_IFDIR }
func (r record) isSymlink() bool { return r.mode&unix.S_IFMT == unix.S_IFLNK }
func (r record) isReg() bool     { return r.mode&unix.S_IFMT == unix.S_IFREG }
func (r record) isSocket() bool  { return r.mode&unix.S_IFMT == unix.S_IFSOCK }

// sameInode reports whether both records describe the same file object.
func (r record) sameInode(o record) bool { return r.ino == o.ino && r.dev == o.dev }

// state maps image paths to their recorded stat data.
type state map[string]record

// lstatRecord reads the record of one host path (symlinks are not followed).
func lstatRecord(host string) (record, error) {
	var st unix.Stat_t
	if err := unix.Lstat(host, &st); err != nil {
		return record{}, &os.PathError{Op: "lstat", Path: host, Err: err}
	}
	r := record{
		mode:  st.Mode,
		size:  st.Size,
		mtime: st.Mtim.Nano(),
		ctime: st.Ctim.Nano(),
		ino:   st.Ino,
		dev:   st.Dev,
		rdev:  st.Rdev,
		uid:   st.Uid,
		gid:   st.Gid,
		nlink: uint64(st.Nlink),
	}
	if r.isDir() {
		// A directory's ctime also moves when a RUN's mount points are created in it and removed
		// again (the runner restores its mtime, but no one can restore a ctime). What matters for
		// a directory, its entries, mode, owner and mtime, is compared without it; the one change
		// this misses is an xattr-only change on a directory.
		r.ctime = 0
	}
	if r.isSymlink() {
		target, err := os.Readlink(host)
		if err != nil {
			return record{}, err
		}
		r.link = target
	}
	return r, nil
}

// walker records every non-ignored path under one image path of a root.
type walker struct {
	ctx    context.Context
	root   string
	opts   *options
	out    state
	visits int
}

// walkState records imagePath and everything below it into out. A missing imagePath records
// nothing. Ignored paths are skipped without descending into them.
func walkState(ctx context.Context, root string, imagePath string, opts *options, out state) error {
	if imagePath != "/" && opts.ignored(imagePath) {
		return nil
	}
	r, err := lstatRecord(hostPath(root, imagePath))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	w := &walker{ctx: ctx, root: root, opts: opts, out: out}
	return w.visit(imagePath, r)
}

func (w *walker) visit(imagePath string, r record) error {
	if r.isSocket() {
		return nil // sockets cannot be stored in a layer
	}
	w.out[imagePath] = r
	if !r.isDir() {
		return nil
	}
	w.visits++
	if w.visits%256 == 0 {
		if err := w.ctx.Err(); err != nil {
			return err
		}
	}
	host := hostPath(w.root, imagePath)
	names, err := readDirNames(host)
	if err != nil {
		return err
	}
	for _, name := range names {
		child := childPath(imagePath, name)
		if w.opts.ignored(child) {
			continue
		}
		cr, err := lstatRecord(hostPath(w.root, child))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // removed while we walked
			}
			return err
		}
		if err := w.visit(child, cr); err != nil {
			return err
		}
	}
	return nil
}

// readDirNames lists a directory's entry names without stat'ing them.
func readDirNames(host string) ([]string, error) {
	f, err := os.Open(host)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("reading directory %s: %w", host, err)
	}
	return names, nil
}
