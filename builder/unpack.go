package builder

import (
	"context"
	"io"

	"github.com/kilnbuild/kiln/internal/decompress"
	"github.com/kilnbuild/kiln/snapshot"
)

// extractStream unpacks one layer's compressed blob into dir. gzip is inflated by pgzip, which
// decompresses ahead on the other core while this goroutine creates files.
func extractStream(ctx context.Context, rc io.Reader, dir string, ignore snapshot.IgnoreFunc) error {
	tarStream, closeFn, err := decompress.Reader(rc)
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
