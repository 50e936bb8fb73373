package copier

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// extract unpacks the tar archive at srcHost into the directory d.host.
// Existing files are replaced; owners come from the archive unless chown
// (then UID/GID own them); --chmod, when given, applies to files and directories. Symlinks
// in the root are followed only within the root.
func (j *job) extract(srcHost, rel string, d dest, chown bool) error {
	tr, done, err := openTar(srcHost)
	if err != nil {
		return fmt.Errorf("open archive %s: %w", rel, err)
	}
	defer done()
	type dirTime struct {
		host string
		t    time.Time
	}
	var dirs []dirTime
	for {
		if err := j.checkCtx(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read archive %s: %w", rel, err)
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			return fmt.Errorf("archive %s: %w", rel, err)
		}
		if name == "." {
			continue // the destination keeps its own metadata
		}
		parent, err := securejoin.SecureJoin(j.root, filepath.FromSlash(path.Join(d.img, path.Dir(name))))
		if err != nil {
			return fmt.Errorf("archive %s: entry %s: %w", rel, hdr.Name, err)
		}
		if err := j.mkdirParents(parent); err != nil {
			return fmt.Errorf("archive %s: entry %s: %w", rel, hdr.Name, err)
		}
		target := filepath.Join(parent, path.Base(name))
		img := j.imagePath(target)
		if j.ignored(img) {
			continue
		}
		isDir, err := j.extractEntry(tr, hdr, target, d, chown)
		if err != nil {
			return fmt.Errorf("archive %s: entry %s: %w", rel, hdr.Name, err)
		}
		if isDir {
			dirs = append(dirs, dirTime{target, hdr.ModTime})
		}
	}
	// Directory times last, deepest first: writing into a directory moves them. A directory
	// that a later entry replaced, or moved behind a symlink (a parent replaced by a link),
	// is left alone: its path may now lead out of the root.
	for i := len(dirs) - 1; i >= 0; i-- {
		if h, err := securejoin.SecureJoin(j.root, filepath.FromSlash(j.imagePath(dirs[i].host))); err != nil || h != dirs[i].host {
			continue
		}
		if fi, err := os.Lstat(dirs[i].host); err != nil || !fi.IsDir() {
			continue
		}
		if err := setTimes(dirs[i].host, dirs[i].t); err != nil {
			return fmt.Errorf("archive %s: set times of %s: %w", rel, j.imagePath(dirs[i].host), err)
		}
	}
	return nil
}

// entryName cleans an archive entry name and rejects one leaving the
// destination.
func entryName(n string) (string, error) {
	c := path.Clean(n)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("entry %q points outside the destination", n)
	}
	c = strings.TrimPrefix(path.Clean("/"+c), "/")
	if c == "" {
		c = "."
	}
	return c, nil
}

// extractEntry writes one archive entry at target; it reports whether the
// entry was a directory (whose times are set at the end).
func (j *job) extractEntry(tr *tar.Reader, hdr *tar.Header, target string, d dest, chown bool) (bool, error) {
	sparse := isSparse(hdr)
	if hdr.Typeflag == tar.TypeGNUSparse {
		hdr.Typeflag = tar.TypeReg // GNU's old sparse type: a regular file, not one to skip
	}
	img := j.imagePath(target)
	m := meta{uid: hdr.Uid, gid: hdr.Gid, mode: fs.FileMode(hdr.Mode).Perm(), mtime: hdr.ModTime}
	m.mode |= hdr.FileInfo().Mode() & (fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	if chown && j.req.UID >= 0 {
		m.uid = j.req.UID
	}
	if chown && j.req.GID >= 0 {
		m.gid = j.req.GID
	}
	if j.req.Mode != nil && (hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeDir) {
		m.mode = *j.req.Mode & permBits
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		st, err := os.Lstat(target)
		if err == nil && st.IsDir() {
			if m.differs(st) {
				j.record(img)
			}
		} else {
			if err := j.removeExisting(target); err != nil {
				return false, err
			}
			if err := os.Mkdir(target, 0o700); err != nil {
				return false, err
			}
			j.record(img)
		}
		if err := m.apply(target); err != nil {
			return false, err
		}
		return true, setXattrs(target, hdr)
	case tar.TypeReg, tar.TypeChar, tar.TypeBlock, tar.TypeFifo, tar.TypeSymlink, tar.TypeLink:
	default:
		return false, nil // pax globals and the like carry no file
	}
	if err := j.removeExisting(target); err != nil {
		return false, err
	}
	j.record(img)
	switch hdr.Typeflag {
	case tar.TypeReg:
		write := writeNewFile
		if sparse {
			write = func(dst string, r io.Reader) error { return writeNewSparseFile(dst, r, hdr.Size) }
		}
		if err := write(target, tr); err != nil {
			return false, err
		}
	case tar.TypeSymlink:
		m.symlink = true
		if err := os.Symlink(hdr.Linkname, target); err != nil {
			return false, err
		}
	case tar.TypeLink:
		ln, err := entryName(hdr.Linkname)
		if err != nil {
			return false, err
		}
		linkParent, err := securejoin.SecureJoin(j.root, filepath.FromSlash(path.Join(d.img, path.Dir(ln))))
		if err != nil {
			return false, err
		}
		// A hard link shares the inode: no metadata of its own to set.
		return false, os.Link(filepath.Join(linkParent, path.Base(ln)), target)
	default:
		mode := uint32(m.mode.Perm())
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode |= unix.S_IFCHR
		case tar.TypeBlock:
			mode |= unix.S_IFBLK
		default:
			mode |= unix.S_IFIFO
		}
		if err := unix.Mknod(target, mode, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))); err != nil {
			return false, err
		}
	}
	if err := m.apply(target); err != nil {
		return false, err
	}
	if !m.symlink {
		if err := setXattrs(target, hdr); err != nil {
			return false, err
		}
	}
	return false, setTimes(target, m.mtime)
}

// setXattrs applies the xattrs a PAX header carries (e.g. security.capability).
func setXattrs(target string, hdr *tar.Header) error {
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if err := unix.Lsetxattr(target, name, []byte(v), 0); err != nil &&
			(name == "security.capability" || !errors.Is(err, unix.ENOTSUP)) {
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	return nil
}
