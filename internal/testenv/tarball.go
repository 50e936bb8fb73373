package testenv

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/klauspost/pgzip"
	"golang.org/x/sys/unix"
)

// tarOptions tune writeTarGz.
type tarOptions struct {
	// mtime, when not zero, replaces every entry's modification time so the
	// layer digest does not depend on when the files were written.
	mtime time.Time
}

// writeTarGz writes the tree under dir to out as a gzipped tar: paths
// relative to dir in lexical order (parents first), numeric owners, modes
// including setuid/setgid/sticky, symlinks unfollowed, hardlinks kept as
// links, devices and fifos, and the security.capability xattr.
func writeTarGz(dir, out string, o tarOptions) (err error) {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	zw := pgzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	if err := writeTree(tw, dir, o); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// inode identifies a file for hardlink detection.
type inode struct{ dev, ino uint64 }

// writeTree adds every entry under dir (not dir itself) to tw.
func writeTree(tw *tar.Writer, dir string, o tarOptions) error {
	links := map[inode]string{}
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSocket != 0 {
			return nil // tar cannot hold sockets; they are runtime state anyway
		}
		hdr, err := entryHeader(path, rel, fi, links)
		if err != nil {
			return fmt.Errorf("tar %s: %w", path, err)
		}
		if !o.mtime.IsZero() {
			hdr.ModTime = o.mtime
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("tar %s: %w", path, err)
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Size == 0 {
			return nil
		}
		return copyFileTo(tw, path)
	})
}

// entryHeader builds the tar header of one file.
func entryHeader(path, rel string, fi fs.FileInfo, links map[inode]string) (*tar.Header, error) {
	var target string
	if fi.Mode()&fs.ModeSymlink != 0 {
		t, err := os.Readlink(path)
		if err != nil {
			return nil, err
		}
		target = t
	}
	hdr, err := tar.FileInfoHeader(fi, target)
	if err != nil {
		return nil, err
	}
	hdr.Name = filepath.ToSlash(rel)
	if fi.IsDir() {
		hdr.Name += "/"
	}
	// Numeric owners only, like tar --numeric-owner; no atime/ctime noise.
	hdr.Uname, hdr.Gname = "", ""
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
	hdr.ModTime = fi.ModTime().Truncate(time.Second)
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, errors.New("no stat data")
	}
	hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
	if fi.Mode().IsRegular() && st.Nlink > 1 {
		key := inode{uint64(st.Dev), st.Ino}
		if first, seen := links[key]; seen {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
		} else {
			links[key] = hdr.Name
		}
	}
	if c, ok := getCapability(path); ok {
		hdr.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": c}
		hdr.Format = tar.FormatPAX
	}
	return hdr, nil
}

// getCapability reads the security.capability xattr of path, if set.
func getCapability(path string) (string, bool) {
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(path, "security.capability", buf)
	if err != nil || n <= 0 {
		return "", false
	}
	return string(buf[:n]), true
}

// copyFileTo streams the file at path into w.
func copyFileTo(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
