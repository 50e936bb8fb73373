package rootstate

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNotSelfContained says a layer cannot be kept on its own: it names a parent directory it
// does not contain, or hardlinks to a file of another layer. Its directory would depend on the
// layers below it, so such a layer is always unpacked instead.
var ErrNotSelfContained = errors.New("layer is not self-contained")

// opaqueXattr marks an overlayfs directory whose lower contents are hidden.
const opaqueXattr = "trusted.overlay.opaque"

// unpacker writes one layer tar into an empty directory in overlayfs form.
type unpacker struct {
	dir   string
	dirs  map[string]*tar.Header // image paths of the directories this layer made ("/" included)
	files map[string]bool        // regular files this layer wrote (hardlink targets)
}

// unpackDiff writes the uncompressed layer tar r into dir (an existing empty directory).
func unpackDiff(dir string, r io.Reader) error {
	u := &unpacker{dir: dir, dirs: map[string]*tar.Header{"/": nil}, files: map[string]bool{}}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := u.apply(hdr, tr); err != nil {
			return fmt.Errorf("%s: %w", hdr.Name, err)
		}
	}
	return u.finishDirs()
}

func (u *unpacker) host(p string) string { return filepath.Join(u.dir, filepath.FromSlash(p)) }

func (u *unpacker) apply(hdr *tar.Header, content io.Reader) error {
	p := path.Clean("/" + hdr.Name)
	if p == "/" {
		return nil // the root's own metadata comes from the upper directory, as in Docker
	}
	parent, base := path.Dir(p), path.Base(p)
	if _, ok := u.dirs[parent]; !ok {
		return fmt.Errorf("%w: parent %s is not in the layer", ErrNotSelfContained, parent)
	}
	switch {
	case base == ".wh..wh..opq":
		return unix.Lsetxattr(u.host(parent), opaqueXattr, []byte("y"), 0)
	case strings.HasPrefix(base, ".wh."):
		target := u.host(path.Join(parent, strings.TrimPrefix(base, ".wh.")))
		if err := u.replace(path.Join(parent, strings.TrimPrefix(base, ".wh.")), false); err != nil {
			return err
		}
		return unix.Mknod(target, unix.S_IFCHR, 0)
	}
	host := u.host(p)
	if err := u.replace(p, hdr.Typeflag == tar.TypeDir); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(host, 0o700); err != nil && !os.IsExist(err) {
			return err
		}
		u.dirs[p] = hdr // metadata at the end, once its children are written
		return nil
	case tar.TypeReg, tar.TypeRegA:
		if err := writeFile(host, content); err != nil {
			return err
		}
		u.files[p] = true
	case tar.TypeSymlink:
		if err := os.Symlink(hdr.Linkname, host); err != nil {
			return err
		}
	case tar.TypeLink:
		target := path.Clean("/" + hdr.Linkname)
		if !u.files[target] {
			return fmt.Errorf("%w: hardlink to %s, which is not in the layer", ErrNotSelfContained, target)
		}
		return os.Link(u.host(target), host)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		if err := unix.Mknod(host, mode|0o600, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))); err != nil {
			return err
		}
	default:
		return nil // pax globals and the like carry no file
	}
	return setMetadata(host, hdr)
}

// replace removes what the layer wrote at p before, unless p is a directory staying one.
func (u *unpacker) replace(p string, wantDir bool) error {
	host := u.host(p)
	fi, err := os.Lstat(host)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() && wantDir {
		return nil
	}
	for d := range u.dirs {
		if d == p || strings.HasPrefix(d, p+"/") {
			delete(u.dirs, d)
		}
	}
	delete(u.files, p)
	return os.RemoveAll(host)
}

func writeFile(host string, content io.Reader) error {
	f, err := os.OpenFile(host, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, content); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// setMetadata applies owner, mode, xattrs and times (owner first: chown clears setuid bits).
func setMetadata(host string, hdr *tar.Header) error {
	if err := os.Lchown(host, hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeSymlink {
		if err := unix.Chmod(host, uint32(hdr.Mode&0o7777)); err != nil {
			return err
		}
	}
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok || strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		if err := unix.Lsetxattr(host, name, []byte(v), 0); err != nil && hdr.Typeflag != tar.TypeSymlink {
			return fmt.Errorf("xattr %s: %w", name, err)
		}
	}
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	return setTimes(host, atime, hdr.ModTime)
}

func setTimes(host string, atime, mtime time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, host, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// finishDirs sets the directories' metadata, deepest first, now that nothing is written below them.
func (u *unpacker) finishDirs() error {
	paths := make([]string, 0, len(u.dirs))
	for p, hdr := range u.dirs {
		if hdr != nil {
			paths = append(paths, p)
		}
	}
	sortDeepestFirst(paths)
	for _, p := range paths {
		if err := setMetadata(u.host(p), u.dirs[p]); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

func sortDeepestFirst(paths []string) {
	sort.Slice(paths, func(i, j int) bool { return strings.Count(paths[i], "/") > strings.Count(paths[j], "/") })
}
