package copier

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Compression magic numbers; archives are recognised by content, not name.
var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicBzip2 = []byte("BZh")
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// decompress wraps r in the decompressor its first bytes call for (or none).
// The returned close function releases decoder resources.
func decompress(r io.Reader) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 1<<20)
	head, _ := br.Peek(6)
	noop := func() {}
	switch {
	case bytes.HasPrefix(head, magicGzip):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, noop, err
		}
		return zr, func() { zr.Close() }, nil
	case bytes.HasPrefix(head, magicBzip2):
		return bzip2.NewReader(br), noop, nil
	case bytes.HasPrefix(head, magicXz):
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, noop, err
		}
		return xr, noop, nil
	case bytes.HasPrefix(head, magicZstd):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, noop, err
		}
		return zr, zr.Close, nil
	}
	return br, noop, nil
}

// openTar opens a local file as a (possibly compressed) tar stream.
func openTar(host string) (*tar.Reader, func(), error) {
	f, err := os.Open(host)
	if err != nil {
		return nil, nil, err
	}
	r, closeDec, err := decompress(f)
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
