package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/cache"
	"github.com/kilnbuild/kiln/internal/decompress"
	"github.com/kilnbuild/kiln/snapshot"
)

// extractStream unpacks one layer's compressed blob into dir. gzip is inflated by pgzip, which
// decompresses ahead on its own goroutine while this one reads the tar and snapshot.Extract's
// writers create the files (both cores, see snapshot.WithExtractWorkers).
//
// When diffID is set (the digest the image's config records for the layer's uncompressed tar),
// the tar stream is hashed as it is read, and a layer whose content does not match is refused
// once it has been read: an image whose config and layers disagree is damaged or forged, and
// its history and cache keys would describe files it does not hold.
//
// keep, when not nil, is fed the tar stream too, and committed once the stream was found to be
// diffID (the base image cache's unpack form of the layer); on any failure it is aborted.
func extractStream(ctx context.Context, rc io.Reader, dir string, ignore snapshot.IgnoreFunc, diffID v1.Hash, keep *cache.FormWriter) (err error) {
	if keep != nil {
		if diffID.Algorithm != "sha256" || diffID.Hex == "" {
			keep.Abort()
			keep = nil
		} else {
			defer func() {
				if err != nil {
					keep.Abort()
				} else {
					keep.Commit(diffID)
				}
			}()
		}
	}
	tarStream, closeFn, err := decompress.Reader(rc)
	if err != nil {
		return err
	}
	defer closeFn()
	var h hash.Hash
	if diffID.Algorithm == "sha256" && diffID.Hex != "" {
		h = sha256.New()
		var w io.Writer = h
		if keep != nil {
			w = io.MultiWriter(h, keep)
		}
		tarStream = io.TeeReader(tarStream, w)
	}
	var opts []snapshot.Option
	if ignore != nil {
		opts = append(opts, snapshot.WithIgnore(ignore))
	}
	if err := snapshot.Extract(ctx, dir, tarStream, opts...); err != nil {
		return err
	}
	// Drain what follows the tar's end blocks so digest verification of the stream completes.
	if _, err := io.Copy(io.Discard, tarStream); err != nil {
		return err
	}
	if h != nil {
		if got := hex.EncodeToString(h.Sum(nil)); got != diffID.Hex {
			return fmt.Errorf("the layer's content has diffID sha256:%s, but the image's config records %s: the image is damaged or was altered, refusing it", got, diffID)
		}
	}
	return nil
}
