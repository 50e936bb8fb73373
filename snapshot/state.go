package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

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
		// Its link count only mirrors its subdirectories (recorded on their own), and overlayfs
		// reports 1 once a directory is merged from several layers (a root from the state cache).
		r.nlink = 0
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

// walkWorkers is how many directories are read at once: a walk is lstat calls, and two
// cores issue them twice as fast.
const walkWorkers = 4

// walker records every non-ignored path under one image path of a root. Directories are
// listed concurrently by up to walkWorkers goroutines; a directory found while no worker is
// free is walked by the goroutine that found it.
type walker struct {
	ctx    context.Context
	root   string
	opts   *options
	mu     sync.Mutex // guards out and err
	out    state
	err    error
	tokens chan struct{}
	wg     sync.WaitGroup
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
	w := &walker{ctx: ctx, root: root, opts: opts, out: out, tokens: make(chan struct{}, walkWorkers-1)}
	if r.isSocket() {
		return nil
	}
	out[imagePath] = r
	if r.isDir() {
		w.dir(imagePath)
	}
	w.wg.Wait()
	return w.err
}

func (w *walker) failed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err != nil
}

func (w *walker) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

// dir records the children of the directory imagePath and walks the subdirectories.
func (w *walker) dir(imagePath string) {
	if w.failed() {
		return
	}
	if err := w.ctx.Err(); err != nil {
		w.fail(err)
		return
	}
	names, err := readDirNames(hostPath(w.root, imagePath))
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) { // removed while we walked
			w.fail(err)
		}
		return
	}
	recs := make([]record, 0, len(names))
	paths := make([]string, 0, len(names))
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
			w.fail(err)
			return
		}
		if cr.isSocket() {
			continue // sockets cannot be stored in a layer
		}
		recs = append(recs, cr)
		paths = append(paths, child)
	}
	w.mu.Lock()
	for i, p := range paths {
		w.out[p] = recs[i]
	}
	w.mu.Unlock()
	for i, p := range paths {
		if !recs[i].isDir() {
			continue
		}
		select {
		case w.tokens <- struct{}{}:
			w.wg.Add(1)
			go func(p string) {
				defer w.wg.Done()
				defer func() { <-w.tokens }()
				w.dir(p)
			}(p)
		default:
			w.dir(p)
		}
	}
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
