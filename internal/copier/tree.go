package copier

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// pending is a destination directory made only when first needed, so an
// excluded directory appears only if some descendant is re-included.
type pending struct {
	parent *pending
	make   func() error
	done   bool
	// recordKids says whether entries written below must be recorded; a
	// directory this call created covers its whole subtree already.
	recordKids bool
}

func (p *pending) ensure() error {
	if p == nil || p.done {
		return nil
	}
	if err := p.parent.ensure(); err != nil {
		return err
	}
	if err := p.make(); err != nil {
		return err
	}
	p.done = true
	return nil
}

// existingDir is the pending for a directory that is already in place.
func existingDir() *pending { return &pending{done: true, recordKids: true} }

// copyEntry copies one source entry (never followed if a symlink) to dst.
func (j *job) copyEntry(srcHost, rel string, fi fs.FileInfo, dst string, parent *pending) error {
	if err := j.checkCtx(); err != nil {
		return err
	}
	if j.ignored(j.imagePath(dst)) {
		return nil
	}
	skip, unselected := j.parentsFilter(rel)
	if skip {
		return nil
	}
	excluded := j.excluded(rel) || unselected
	if fi.IsDir() {
		return j.copyDir(srcHost, rel, fi, dst, parent, excluded, false)
	}
	if excluded {
		return nil
	}
	if err := parent.ensure(); err != nil {
		return err
	}
	if parent.recordKids {
		j.record(j.imagePath(dst))
	}
	return j.writeNonDir(srcHost, fi, dst)
}

// copyDir copies a directory and its contents to dst. keepMeta leaves an
// existing dst's owner, mode and times alone (the top-level destination).
func (j *job) copyDir(srcHost, rel string, fi fs.FileInfo, dst string, parent *pending, excluded, keepMeta bool) error {
	img := j.imagePath(dst)
	if j.ignored(img) {
		return nil
	}
	m := j.metaFor(fi)
	setMeta := true
	p := &pending{parent: parent}
	p.make = func() error {
		st, err := os.Lstat(dst)
		if err == nil && st.IsDir() {
			setMeta = !keepMeta
			changed := setMeta && m.differs(st)
			if changed && parent.recordKids {
				j.record(img)
			}
			p.recordKids = parent.recordKids && !changed
			return nil
		}
		if err := j.removeExisting(dst); err != nil {
			return err
		}
		if err := os.Mkdir(dst, 0o700); err != nil {
			return fmt.Errorf("create directory %s: %w", img, err)
		}
		if parent.recordKids {
			j.record(img)
		}
		p.recordKids = false
		return nil
	}
	if !excluded {
		if err := p.ensure(); err != nil {
			return err
		}
	}
	ents, err := os.ReadDir(srcHost)
	if err != nil {
		return fmt.Errorf("read directory %s: %w", rel, err)
	}
	for _, e := range ents {
		cfi, err := e.Info()
		if err != nil {
			return fmt.Errorf("stat %s: %w", path.Join(rel, e.Name()), err)
		}
		if err := j.copyEntry(filepath.Join(srcHost, e.Name()), path.Join(rel, e.Name()), cfi,
			filepath.Join(dst, e.Name()), p); err != nil {
			return err
		}
	}
	if !p.done || !setMeta {
		return nil
	}
	// Times last: writing the children changed the directory's mtime.
	return j.finish(dst, srcHost, m)
}

// finish sets owner and mode, copies xattrs, then sets times on dst.
func (j *job) finish(dst, srcHost string, m meta) error {
	if err := m.apply(dst); err != nil {
		return fmt.Errorf("set metadata of %s: %w", j.imagePath(dst), err)
	}
	if srcHost != "" && !m.symlink {
		if err := copyXattrs(srcHost, dst); err != nil {
			return fmt.Errorf("%s: %w", j.imagePath(dst), err)
		}
	}
	if err := setTimes(dst, m.mtime); err != nil {
		return fmt.Errorf("set times of %s: %w", j.imagePath(dst), err)
	}
	return nil
}

// writeNonDir writes a file, symlink, device or fifo at dst, replacing
// whatever is there (a symlink at dst is replaced, never followed).
func (j *job) writeNonDir(srcHost string, fi fs.FileInfo, dst string) error {
	m := j.metaFor(fi)
	if err := j.removeExisting(dst); err != nil {
		return err
	}
	img := j.imagePath(dst)
	st, _ := fi.Sys().(*syscall.Stat_t)
	switch mode := fi.Mode(); {
	case mode.IsRegular():
		var id fileID
		if st != nil && st.Nlink > 1 {
			id = fileID{dev: uint64(st.Dev), ino: st.Ino}
			if first, ok := j.links[id]; ok {
				if err := os.Link(first, dst); err != nil {
					return fmt.Errorf("hard link %s: %w", img, err)
				}
				return nil
			}
		}
		if err := copyFileData(srcHost, dst); err != nil {
			return fmt.Errorf("copy %s to %s: %w", srcHost, img, err)
		}
		if id != (fileID{}) {
			j.links[id] = dst
		}
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(srcHost)
		if err != nil {
			return fmt.Errorf("read link %s: %w", srcHost, err)
		}
		if err := os.Symlink(target, dst); err != nil {
			return fmt.Errorf("create symlink %s: %w", img, err)
		}
	case mode&(fs.ModeDevice|fs.ModeNamedPipe) != 0 && st != nil:
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return fmt.Errorf("create device %s: %w", img, err)
		}
	default:
		return nil // sockets cannot be copied; Docker skips them too
	}
	return j.finish(dst, srcHost, m)
}

// copyFileData copies a regular file's bytes into a new file; io.Copy
// between *os.File uses copy_file_range where the kernel can.
func copyFileData(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeNewFile(dst, in)
}

// writeNewFile creates dst (which must not exist) mode 0600 and fills it.
func writeNewFile(dst string, r io.Reader) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
