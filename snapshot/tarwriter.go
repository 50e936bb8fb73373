package snapshot

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// copyBufferSize is large so that big files move in few syscalls.
const copyBufferSize = 1 << 20

// tarWriter turns changes under one root into tar entries.
type tarWriter struct {
	tw           *tar.Writer
	root         string
	reproducible bool
	links        map[[2]uint64]string // (dev, inode) -> first tar name, for hardlinks
	buf          []byte
}

func newTarWriter(w io.Writer, root string, reproducible bool) *tarWriter {
	return &tarWriter{
		tw:           tar.NewWriter(w),
		root:         root,
		reproducible: reproducible,
		links:        map[[2]uint64]string{},
		buf:          make([]byte, copyBufferSize),
	}
}

// tarName is the entry name for an image path: relative, no leading "/" or "./".
func tarName(imagePath string) string { return imagePath[1:] }

func (w *tarWriter) modTime(ns int64) time.Time {
	if w.reproducible {
		return time.Unix(0, 0)
	}
	return time.Unix(0, ns)
}

// write adds one change to the tar stream; f holds what the readers fetched for it.
func (w *tarWriter) write(c change, f *fetched) error {
	if f.err != nil {
		return f.err
	}
	if c.kind != changeAdd {
		return w.tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeReg,
			Name:     tarName(c.path),
			Mode:     0o644,
			ModTime:  time.Unix(0, 0),
			Format:   tar.FormatPAX,
		})
	}
	host := hostPath(w.root, c.path)
	r := c.rec
	hdr := &tar.Header{
		Name:    tarName(c.path),
		Mode:    int64(r.mode & 0o7777),
		Uid:     int(r.uid),
		Gid:     int(r.gid),
		ModTime: w.modTime(r.mtime),
		Format:  tar.FormatPAX,
	}
	switch r.mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = r.link
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = r.size
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if r.mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor = int64(unix.Major(r.rdev))
		hdr.Devminor = int64(unix.Minor(r.rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil // sockets and unknown types have no tar form
	}
	if hdr.Typeflag != tar.TypeDir && r.nlink > 1 {
		key := [2]uint64{r.dev, r.ino}
		if first, ok := w.links[key]; ok {
			hdr.Typeflag = tar.TypeLink
			hdr.Linkname = first
			hdr.Size = 0
		} else {
			w.links[key] = hdr.Name
		}
	}
	if hdr.Typeflag != tar.TypeLink && len(f.xattrs) > 0 {
		hdr.PAXRecords = make(map[string]string, len(f.xattrs))
		for k, v := range f.xattrs {
			hdr.PAXRecords[paxXattrPrefix+k] = v
		}
	}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("writing tar header for %s: %w", c.path, err)
	}
	if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
		if f.data != nil {
			_, err := w.tw.Write(f.data)
			return err
		}
		return w.copyContent(host, c.path, hdr.Size)
	}
	return nil
}

// readerOnly hides os.File's WriteTo so io.CopyBuffer uses our large buffer.
type readerOnly struct{ io.Reader }

func (w *tarWriter) copyContent(host, imagePath string, size int64) error {
	f, err := os.OpenFile(host, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("opening %s for the layer: %w", imagePath, err)
	}
	defer f.Close()
	n, err := io.CopyBuffer(w.tw, readerOnly{io.LimitReader(f, size)}, w.buf)
	if err != nil {
		return fmt.Errorf("copying %s into the layer: %w", imagePath, err)
	}
	if n != size {
		return fmt.Errorf("copying %s into the layer: file shrank from %d to %d bytes while snapshotting", imagePath, size, n)
	}
	return nil
}

// close finishes the tar stream.
func (w *tarWriter) close() error { return w.tw.Close() }
