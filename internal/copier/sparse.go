package copier

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// isSparse reports whether the tar reader reads hdr's entry as a sparse file (GNU's pax
// records, or GNU's old sparse type).
func isSparse(hdr *tar.Header) bool {
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

// holeChunk is the granularity at which writeNewSparseFile finds holes.
const holeChunk = 4096

var zeroChunk [holeChunk]byte

// writeNewSparseFile creates dst, of size bytes, from r, the content of a sparse archive entry:
// the tar reader gives its holes as zeros, and writing them would let an archive of a few
// bytes fill the disk, so runs of zero chunks are skipped and stay holes.
func writeNewSparseFile(dst string, r io.Reader, size int64) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	buf := make([]byte, 256<<10)
	for {
		n, rerr := r.Read(buf)
		for b := buf[:n]; len(b) > 0; {
			k := min(len(b), holeChunk)
			zero := bytes.Equal(b[:k], zeroChunk[:k])
			for k < len(b) {
				m := min(len(b)-k, holeChunk)
				if bytes.Equal(b[k:k+m], zeroChunk[:m]) != zero {
					break
				}
				k += m
			}
			if zero {
				_, err = out.Seek(int64(k), io.SeekCurrent)
			} else {
				_, err = out.Write(b[:k])
			}
			if err != nil {
				out.Close()
				return err
			}
			b = b[k:]
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			out.Close()
			return rerr
		}
	}
	if err := out.Truncate(size); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
