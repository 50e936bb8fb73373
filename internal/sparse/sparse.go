// Package sparse writes the content of sparse archive entries without filling their holes. The
// tar reader gives a sparse file's holes as zeros: writing them would let an archive of a few
// bytes fill the disk, so runs of all-zero chunks are skipped and stay holes.
package sparse

import (
	"archive/tar"
	"bytes"
	"io"
	"strings"

	"golang.org/x/sys/unix"
)

// IsSparse reports whether the tar reader reads hdr's entry as a sparse file (GNU's pax
// records, or GNU's old sparse type).
func IsSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// chunk is the granularity at which Write finds holes.
const chunk = 4096

var zeros [chunk]byte

// Write writes b at fd's offset, seeking over runs of all-zero chunks. A file written this way
// needs a final Truncate to its size, since a trailing hole writes nothing.
func Write(fd int, b []byte) error {
	for len(b) > 0 {
		n := min(len(b), chunk)
		zero := bytes.Equal(b[:n], zeros[:n])
		for n < len(b) {
			m := min(len(b)-n, chunk)
			if bytes.Equal(b[n:n+m], zeros[:m]) != zero {
				break
			}
			n += m
		}
		if zero {
			if _, err := unix.Seek(fd, int64(n), io.SeekCurrent); err != nil {
				return err
			}
		} else if err := WriteAll(fd, b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// WriteAll writes all of b at fd's offset, retrying short and interrupted writes.
func WriteAll(fd int, b []byte) error {
	for len(b) > 0 {
		w, err := unix.Write(fd, b)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return err
		}
		b = b[w:]
	}
	return nil
}

// Copy writes what r holds to fd with Write, then sets the file's size to size (a trailing
// hole). buf is the read buffer (a fresh one when nil).
func Copy(fd int, r io.Reader, size int64, buf []byte) error {
	if buf == nil {
		buf = make([]byte, 256<<10)
	}
	for {
		n, rerr := r.Read(buf)
		if err := Write(fd, buf[:n]); err != nil {
			return err
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	return unix.Ftruncate(fd, size)
}
