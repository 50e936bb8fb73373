package snapshot

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/kilnbuild/kiln/internal/dirspread"
	"github.com/kilnbuild/kiln/internal/sparse"
	"golang.org/x/sys/unix"
)

// Extract applies an uncompressed layer tar to root: regular files, dirs, symlinks (never
// followed out of the root), hardlinks, devices, fifos, modes incl. setuid/setgid/sticky,
// uid/gid, xattrs, mtimes; ".wh.<name>" deletes <name>; ".wh..wh..opq" empties the directory
// of what lower layers put there; a file replaced by a dir (or the reverse) round-trips.
// Paths with ".." escaping the root are rejected. Ignored paths are left untouched.
//
// Directories, small files and symlinks are created by writer goroutines (see
// WithExtractWorkers) while the layer is read; whatever depends on them (an entry below
// them, a hardlink, a whiteout) waits for them.
func Extract(ctx context.Context, root string, tarStream io.Reader, opts ...Option) error {
	abs, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	o := buildOptions(opts)
	e := &extractor{
		ctx:      ctx,
		root:     filepath.Clean(abs),
		opts:     &o,
		written:  map[string]bool{},
		resolved: map[string]string{},
		known:    map[string]bool{},
		fresh:    map[string]bool{},
		pending:  map[string]*entryJob{},
		buf:      make([]byte, copyBufferSize),
	}
	e.spread, e.spreading = dirspread.Set(e.root), map[string]bool{}
	defer e.unspread() // after the writers stop
	if n := extractWorkers(&o); n > 1 {
		e.pool = newWriters(ctx, n)
		defer e.pool.stop()
	}
	e.remover = &remover{ignored: e.ignored, keep: func(p string) bool { return e.written[p] }}
	tr := tar.NewReader(bufio.NewReaderSize(tarStream, copyBufferSize))
	for n := 0; ; n++ {
		if n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if e.pool != nil && e.pool.failed.Load() {
			return e.pool.error()
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading layer tar: %w", err)
		}
		if err := e.apply(hdr, tr); err != nil {
			return fmt.Errorf("extracting %q: %w", hdr.Name, err)
		}
	}
	if err := e.settle(); err != nil {
		return err
	}
	return e.finishDirs()
}

// beforeRemoval waits for the writers, whose queued work could be below what goes, and
// forgets the cached facts that the removal makes wrong.
func (e *extractor) beforeRemoval() error {
	if err := e.settle(); err != nil {
		return err
	}
	e.forget()
	return nil
}

// forget drops every cached fact about the tree: something was removed or a symlink appeared.
func (e *extractor) forget() {
	e.changes++
	clear(e.resolved)
	clear(e.known)
	clear(e.fresh)
}

// errIgnoredPath stops extraction of an entry whose directory resolves into an ignored path.
var errIgnoredPath = errors.New("path is ignored")

// extractor holds the state of one layer's extraction.
type extractor struct {
	ctx     context.Context // checked between entries and while a file's content is written
	root    string
	opts    *options
	remover *remover
	// written holds the image paths this layer created; whiteouts never remove them.
	written map[string]bool
	// resolved caches secure resolutions of directory image paths to host paths; cleared
	// whenever a symlink appears or something is removed.
	resolved map[string]string
	// known holds host directories that exist (checked or made by this extraction); fresh the
	// ones this extraction created, which held nothing before it, so an entry inside one needs
	// no look for an older file to replace. Both are dropped whenever something is removed or
	// a symlink appears, like resolved.
	known map[string]bool
	fresh map[string]bool
	dirs  []dirMeta
	buf   []byte
	// changes counts the calls of forget: a directory recorded in dirs at the same count
	// is still at its path.
	changes int
	// pool holds the writer goroutines (nil: everything is written on this one); pending the
	// jobs dispatched to them by host path, so that resolving paths sees what they will
	// create (pendingVFS) and what depends on an entry can wait for it.
	pool       *writers
	pending    map[string]*entryJob
	dispatched int
	// spread says the root asks for its trees to be spread (dirspread.Set): every directory
	// this extraction makes is made by dirspread.Mkdir and listed in spreading, whose flags
	// are cleared at the end.
	spread    bool
	spreading map[string]bool
}

// spreadsAt says whether the new directory host is made by dirspread.Mkdir, and lists it if
// so. It is called on the reading goroutine.
func (e *extractor) spreadsAt(host string) bool {
	if e.spread {
		e.spreading[host] = true
	}
	return e.spread
}

func (e *extractor) mkdir(host string) error {
	if err := spreadMkdir(host, 0o755, e.spreadsAt(host)); err != nil {
		return &os.PathError{Op: "mkdir", Path: host, Err: err}
	}
	return nil
}

// spreadMkdir makes a directory, by dirspread.Mkdir when spread, with unix.Mkdir's errors.
func spreadMkdir(host string, perm uint32, spread bool) error {
	if spread {
		return dirspread.Mkdir(host, perm)
	}
	return unix.Mkdir(host, perm)
}

// unspread clears the flag of the directories this extraction made.
func (e *extractor) unspread() {
	for dir := range e.spreading {
		dirspread.Clear(dir)
	}
}

// dirMeta is applied after all entries, since writing children changes a directory's mtime.
type dirMeta struct {
	host         string
	mode         uint32
	atime, mtime time.Time
	changes      int // extractor.changes when recorded
}

func (e *extractor) ignored(p string) bool { return e.opts.ignoredTree(p) }

// imagePathOf maps a host path under root back to its image path.
func (e *extractor) imagePathOf(host string) string {
	if e.root == "/" {
		return host
	}
	rel := strings.TrimPrefix(host, e.root)
	if rel == "" {
		return "/"
	}
	return rel
}

// resolveDir securely resolves a directory image path to a host path inside root (symlinks in
// it are resolved as if root were "/"). The result may not exist yet.
func (e *extractor) resolveDir(img string) (string, error) {
	if img == "/" {
		return e.root, nil
	}
	if h, ok := e.resolved[img]; ok {
		return h, nil
	}
	h, err := securejoin.SecureJoinVFS(e.root, img, pendingVFS{e})
	if err != nil {
		return "", err
	}
	e.resolved[img] = h
	return h, nil
}

// ensureDir resolves a directory image path and creates what is missing of it.
func (e *extractor) ensureDir(img string) (string, error) {
	host, err := e.resolveDir(img)
	if err != nil {
		return "", err
	}
	if e.known[host] {
		return host, nil
	}
	fi, err := pendingVFS{e}.Lstat(host)
	switch {
	case err == nil && fi.IsDir():
		e.known[host] = true
		return host, nil
	case err == nil:
		return "", fmt.Errorf("parent %s is not a directory", img)
	case !errors.Is(err, os.ErrNotExist):
		return "", err
	case img == "/":
		return host, os.MkdirAll(host, 0o755) // a missing root is created, as tar -C would not
	}
	if e.ignored(e.imagePathOf(host)) {
		return "", errIgnoredPath
	}
	if resolved := e.imagePathOf(host); resolved != img {
		// img leads through a symlink: create the directories the symlink points at.
		return e.ensureDir(resolved)
	}
	if _, err := e.ensureDir(parentPath(img)); err != nil {
		return "", err
	}
	if err := e.await(filepath.Dir(host)); err != nil {
		return "", err
	}
	if err := e.mkdir(host); err != nil {
		if !errors.Is(err, os.ErrExist) {
			return "", err
		}
	} else {
		e.fresh[host] = true
	}
	e.known[host] = true
	return host, nil
}

// target resolves where an entry named by image path img lands: its parent is resolved
// securely, its last component is never followed.
func (e *extractor) target(img string, create bool) (host, resolvedImg string, err error) {
	var dir string
	if create {
		dir, err = e.ensureDir(parentPath(img))
	} else {
		dir, err = e.resolveDir(parentPath(img))
	}
	if err != nil {
		return "", "", err
	}
	host = joinHost(dir, path.Base(img))
	return host, e.imagePathOf(host), nil
}

func (e *extractor) apply(hdr *tar.Header, content io.Reader) error {
	img, ok := cleanImagePath(hdr.Name)
	if !ok {
		return fmt.Errorf("entry escapes the root with \"..\"")
	}
	if img == "/" || e.ignored(img) {
		return nil
	}
	dir, base := parentPath(img), path.Base(img)
	if base == opaqueMarker {
		return e.opaque(dir)
	}
	if name, ok := strings.CutPrefix(base, whiteoutPrefix); ok {
		return e.whiteout(childPath(dir, name))
	}
	host, resolvedImg, err := e.target(img, true)
	if errors.Is(err, errIgnoredPath) {
		return nil // its directory leads into an ignored path
	}
	if err != nil {
		return err
	}
	if e.ignored(resolvedImg) {
		return nil // reached through a symlink into an ignored path
	}
	if e.written[resolvedImg] {
		if err := e.settle(); err != nil { // this layer's earlier entry there may be queued
			return err
		}
	}
	// In a directory this extraction made, only this layer's own entries can exist.
	existed := false
	if !e.fresh[filepath.Dir(host)] || e.written[resolvedImg] {
		if existed, err = e.replaceExisting(host, resolvedImg, hdr.Typeflag == tar.TypeDir); err != nil {
			return err
		}
	}
	e.written[img] = true
	e.written[resolvedImg] = true
	switch hdr.Typeflag {
	case tar.TypeDir:
		if !existed {
			e.fresh[host] = true
		}
		e.known[host] = true
		e.resolved[img], e.resolved[resolvedImg] = host, host // its parent resolved, and not a symlink
		e.dirs = append(e.dirs, dirMeta{host: host, mode: uint32(hdr.Mode & 0o7777), atime: atimeOf(hdr),
			mtime: hdr.ModTime, changes: e.changes})
		return e.dispatchDir(host, hdr, !existed)
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		if e.pool != nil && hdr.Size >= 0 && hdr.Size <= maxQueuedFile && !sparse.IsSparse(hdr) {
			data := e.pool.buffer(int(hdr.Size))
			if _, err := io.ReadFull(content, data); err != nil {
				return fmt.Errorf("reading the content of %s: %w", host, err)
			}
			return e.dispatch(host, hdr, data)
		}
		if err := e.await(filepath.Dir(host)); err != nil {
			return err
		}
		return e.writeRegular(host, hdr, content)
	case tar.TypeSymlink:
		e.forget()
		return e.dispatch(host, hdr, nil)
	case tar.TypeLink:
		if err := e.settle(); err != nil { // its target may be queued
			return err
		}
		return e.hardlink(host, hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		if err := e.await(filepath.Dir(host)); err != nil {
			return err
		}
		mode := uint32(hdr.Mode & 0o7777)
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode |= unix.S_IFCHR
		case tar.TypeBlock:
			mode |= unix.S_IFBLK
		default:
			mode |= unix.S_IFIFO
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknod(host, mode, int(dev)); err != nil {
			return &os.PathError{Op: "mknod", Path: host, Err: err}
		}
	default:
		return nil // pax globals, GNU extensions and the like carry no file
	}
	return e.setMetadata(host, hdr)
}

// replaceExisting removes what is at host unless it is a directory and a directory is wanted,
// and reports whether that directory was kept.
func (e *extractor) replaceExisting(host, img string, wantDir bool) (bool, error) {
	fi, err := os.Lstat(host)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if wantDir && fi.IsDir() {
		return true, nil
	}
	if err := e.beforeRemoval(); err != nil {
		return false, err
	}
	kept, err := e.remover.removeTree(img, host)
	if err != nil {
		return false, err
	}
	if kept {
		return false, fmt.Errorf("cannot replace directory %s: it holds ignored or already extracted paths", img)
	}
	return false, nil
}

// writeRegular creates a regular file and sets its owner, xattrs, mode and times through the
// open descriptor: one path lookup per file instead of one per attribute, and no registration
// with Go's poller (regular files gain nothing from it).
func (e *extractor) writeRegular(host string, hdr *tar.Header, content io.Reader) error {
	fd, err := createRegular(host)
	if err != nil {
		return err
	}
	err = e.fillRegular(fd, host, hdr, content)
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = &os.PathError{Op: "close", Path: host, Err: cerr}
	}
	return err
}

func (e *extractor) fillRegular(fd int, host string, hdr *tar.Header, content io.Reader) error {
	// The tar reader gives a sparse file's holes as zeros: writing them would let a layer of a
	// few bytes fill the disk, so they stay holes.
	isSparse := sparse.IsSparse(hdr)
	for {
		if err := e.ctx.Err(); err != nil {
			return err
		}
		n, rerr := content.Read(e.buf)
		var err error
		if isSparse {
			err = sparse.Write(fd, e.buf[:n])
		} else {
			err = sparse.WriteAll(fd, e.buf[:n])
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", host, err)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("writing %s: %w", host, rerr)
		}
	}
	if isSparse {
		if err := unix.Ftruncate(fd, hdr.Size); err != nil { // a trailing hole
			return &os.PathError{Op: "truncate", Path: host, Err: err}
		}
	}
	return regularMetadata(fd, host, hdr)
}

// createRegular creates a regular file for writing; the last component is never followed.
func createRegular(host string) (int, error) {
	fd, err := unix.Open(host, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: host, Err: err}
	}
	return fd, nil
}

// regularMetadata sets a written file's owner, xattrs, mode and times through its descriptor.
func regularMetadata(fd int, host string, hdr *tar.Header) error {
	if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
		return &os.PathError{Op: "fchown", Path: host, Err: err}
	}
	if err := fsetXattrs(fd, host, hdr.PAXRecords); err != nil {
		return err
	}
	// After chown, which clears setuid/setgid.
	if err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777)); err != nil {
		return &os.PathError{Op: "fchmod", Path: host, Err: err}
	}
	return futimens(fd, host, atimeOf(hdr), hdr.ModTime)
}

// atimeOf is an entry's access time, its modification time when the tar has none.
func atimeOf(hdr *tar.Header) time.Time {
	if hdr.AccessTime.IsZero() {
		return hdr.ModTime
	}
	return hdr.AccessTime
}

func (e *extractor) hardlink(host, linkname string) error {
	img, ok := cleanImagePath(linkname)
	if !ok {
		return fmt.Errorf("hardlink target %q escapes the root", linkname)
	}
	targetHost, resolvedImg, err := e.target(img, false)
	if err != nil {
		return err
	}
	if e.ignored(resolvedImg) {
		return fmt.Errorf("hardlink target %q is an ignored path", linkname)
	}
	if err := os.Link(targetHost, host); err != nil {
		return err
	}
	return nil
}

// setMetadata applies a device's or fifo's owner, mode (after owner, so setuid survives),
// xattrs and times.
func (e *extractor) setMetadata(host string, hdr *tar.Header) error {
	if err := ownerAndXattrs(host, hdr); err != nil {
		return err
	}
	if err := unix.Chmod(host, uint32(hdr.Mode&0o7777)); err != nil {
		return &os.PathError{Op: "chmod", Path: host, Err: err}
	}
	return setTimes(host, atimeOf(hdr), hdr.ModTime)
}

// ownerAndXattrs sets an entry's owner and extended attributes, not following a symlink.
func ownerAndXattrs(host string, hdr *tar.Header) error {
	if err := unix.Lchown(host, hdr.Uid, hdr.Gid); err != nil {
		return &os.PathError{Op: "lchown", Path: host, Err: err}
	}
	return writeXattrs(host, hdr.PAXRecords)
}

func setTimes(host string, atime, mtime time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, host, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: host, Err: err}
	}
	return nil
}

// finishDirs sets directory modes and times once their content is in place. A directory that
// a later entry replaced, itself or one above it, by a symlink or a file is left alone: chmod
// follows symlinks, out of the root too.
func (e *extractor) finishDirs() error {
	for i := len(e.dirs) - 1; i >= 0; i-- {
		d := e.dirs[i]
		if d.changes != e.changes && !e.stillDir(d.host) {
			continue
		}
		if err := unix.Chmod(d.host, d.mode); err != nil {
			return &os.PathError{Op: "chmod", Path: d.host, Err: err}
		}
		if err := setTimes(d.host, d.atime, d.mtime); err != nil {
			return err
		}
	}
	return nil
}

// stillDir reports whether host is still a directory reached without a symlink from the root.
func (e *extractor) stillDir(host string) bool {
	h, err := securejoin.SecureJoin(e.root, e.imagePathOf(host))
	if err != nil || h != host {
		return false
	}
	fi, err := os.Lstat(host)
	return err == nil && fi.IsDir()
}

// whiteout deletes an image path that lower layers created.
func (e *extractor) whiteout(img string) error {
	if e.ignored(img) || e.written[img] {
		return nil
	}
	host, resolvedImg, err := e.target(img, false)
	if err != nil {
		return err
	}
	if e.ignored(resolvedImg) || e.written[resolvedImg] {
		return nil
	}
	if err := e.beforeRemoval(); err != nil {
		return err
	}
	_, err = e.remover.removeTree(resolvedImg, host)
	return err
}

// opaque empties a directory of everything this layer did not write.
func (e *extractor) opaque(dir string) error {
	if err := e.settle(); err != nil {
		return err
	}
	host, err := e.resolveDir(dir)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(host)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("opaque marker in %s, which is not a directory", dir)
	}
	e.forget() // settled above
	_, err = e.remover.emptyDir(e.imagePathOf(host), host)
	return err
}
