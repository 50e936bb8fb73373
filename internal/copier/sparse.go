package copier

import (
	"archive/tar"
	"io"
	"os"

	"github.com/kilnbuild/kiln/internal/sparse"
	"golang.org/x/sys/unix"
)

// writeNewSparseFile creates dst, of size bytes, from r, the content of a sparse archive entry,
// keeping its holes (see package sparse).
func writeNewSparseFile(dst string, r io.Reader, size int64) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if err := sparse.Copy(int(out.Fd()), r, size, nil); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// isSparse reports whether hdr's entry is a sparse file.
func isSparse(hdr *tar.Header) bool { return sparse.IsSparse(hdr) }
