package testenv

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// layerDigests are the hashes of a gzipped layer file, stored beside it so
// a big cached layer is not decompressed again just to name it.
type layerDigests struct {
	Digest string `json:"digest"`
	DiffID string `json:"diffID"`
	Size   int64  `json:"size"`
}

// computeLayerDigests hashes the gzipped tar at path and its content.
func computeLayerDigests(path string) (layerDigests, error) {
	f, err := os.Open(path)
	if err != nil {
		return layerDigests{}, err
	}
	defer f.Close()
	compressed := sha256.New()
	counter := &countingWriter{}
	zr, err := gzip.NewReader(io.TeeReader(f, io.MultiWriter(compressed, counter)))
	if err != nil {
		return layerDigests{}, fmt.Errorf("%s: %w", path, err)
	}
	uncompressed := sha256.New()
	if _, err := io.Copy(uncompressed, zr); err != nil {
		return layerDigests{}, fmt.Errorf("%s: %w", path, err)
	}
	// Hash any bytes after the gzip stream too: they are part of the blob.
	if _, err := io.Copy(io.Discard, io.TeeReader(f, io.MultiWriter(compressed, counter))); err != nil {
		return layerDigests{}, err
	}
	return layerDigests{
		Digest: "sha256:" + hex.EncodeToString(compressed.Sum(nil)),
		DiffID: "sha256:" + hex.EncodeToString(uncompressed.Sum(nil)),
		Size:   counter.n,
	}, nil
}

// countingWriter counts bytes written to it.
type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// cachedLayerDigests reads path's sidecar digests, computing and writing
// them when absent or stale. The caller holds the cache lock.
func cachedLayerDigests(path string) (layerDigests, error) {
	side := path + ".digests.json"
	fi, err := os.Stat(path)
	if err != nil {
		return layerDigests{}, err
	}
	var d layerDigests
	if b, err := os.ReadFile(side); err == nil && json.Unmarshal(b, &d) == nil && d.Size == fi.Size() {
		return d, nil
	}
	if d, err = computeLayerDigests(path); err != nil {
		return d, err
	}
	b, _ := json.Marshal(d)
	return d, os.WriteFile(side, b, 0o644)
}

// gzipFileLayer is a layer served straight from a gzipped tar on disk.
type gzipFileLayer struct {
	path string
	d    layerDigests
}

// layerFromGzipFile returns a v1.Layer for a gzipped tar whose digests are known.
func layerFromGzipFile(path string, d layerDigests) (v1.Layer, error) {
	return partial.CompressedToLayer(&gzipFileLayer{path: path, d: d})
}

// Digest implements partial.CompressedLayer.
func (l *gzipFileLayer) Digest() (v1.Hash, error) { return v1.NewHash(l.d.Digest) }

// DiffID lets partial skip decompressing the file to compute it.
func (l *gzipFileLayer) DiffID() (v1.Hash, error) { return v1.NewHash(l.d.DiffID) }

// Compressed implements partial.CompressedLayer.
func (l *gzipFileLayer) Compressed() (io.ReadCloser, error) { return os.Open(l.path) }

// Size implements partial.CompressedLayer.
func (l *gzipFileLayer) Size() (int64, error) { return l.d.Size, nil }

// MediaType implements partial.CompressedLayer.
func (l *gzipFileLayer) MediaType() (types.MediaType, error) { return types.DockerLayer, nil }
