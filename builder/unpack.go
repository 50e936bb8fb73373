package builder

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/kilnbuild/kiln/snapshot"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// extractStream unpacks one layer's compressed blob into dir. gzip is inflated by pgzip, which
// decompresses ahead on the other core while this goroutine creates files.
func extractStream(ctx context.Context, rc io.Reader, dir string, ignore snapshot.IgnoreFunc) error {
	tarStream, closeFn, err := decompress(rc)
	if err != nil {
		return err
	}
	defer closeFn()
	var opts []snapshot.Option
	if ignore != nil {
		opts = append(opts, snapshot.WithIgnore(ignore))
	}
	if err := snapshot.Extract(ctx, dir, tarStream, opts...); err != nil {
		return err
	}
	// Drain what follows the tar's end blocks so digest verification of the stream completes.
	_, err = io.Copy(io.Discard, tarStream)
	return err
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// decompress recognises gzip, zstd or a plain tar by its first bytes.
func decompress(r io.Reader) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 1<<20)
	head, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, nil, fmt.Errorf("reading layer: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		zr, err := pgzip.NewReaderN(br, 1<<20, 4)
		if err != nil {
			return nil, nil, fmt.Errorf("layer is not valid gzip: %w", err)
		}
		return zr, func() { zr.Close() }, nil
	case bytes.HasPrefix(head, zstdMagic):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("layer is not valid zstd: %w", err)
		}
		return zr, zr.Close, nil
	}
	return br, func() {}, nil
}
