package copier

import (
	"archive/tar"
	"fmt"
	"os"

	"github.com/kilnbuild/kiln/internal/decompress"
)

// openTar opens a local file as a (possibly compressed) tar stream.
func openTar(host string) (*tar.Reader, func(), error) {
	f, err := os.Open(host)
	if err != nil {
		return nil, nil, err
	}
	r, closeDec, err := decompress.Reader(f)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return tar.NewReader(r), func() { closeDec(); f.Close() }, nil
}

// isArchive reports whether a local file is a tar archive, plain or
// compressed: its first header must parse. Anything else is copied as is.
func isArchive(host string) (bool, error) {
	tr, done, err := openTar(host)
	if err != nil {
		if os.IsNotExist(err) || os.IsPermission(err) {
			return false, fmt.Errorf("open %s: %w", host, err)
		}
		return false, nil // a corrupt compressed header: not an archive
	}
	defer done()
	_, err = tr.Next()
	return err == nil, nil
}
