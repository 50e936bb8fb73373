package snapshot

import (
	"io"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// Layer is a v1.Layer backed by a compressed file on disk; digest, diffID, size and media
// type are known without reading the file again.
type Layer struct {
	path      string
	digest    v1.Hash
	diffID    v1.Hash
	size      int64
	mediaType types.MediaType
	writeTime time.Duration
}

var _ v1.Layer = (*Layer)(nil)

// Path is the compressed layer file.
func (l *Layer) Path() string { return l.path }

// WriteDuration is how long writing the layer file took: the tar stream, its compression and
// both digests, which happen in one pass (zero for a layer this package did not write).
func (l *Layer) WriteDuration() time.Duration { return l.writeTime }

// Digest is the sha256 of the compressed file.
func (l *Layer) Digest() (v1.Hash, error) { return l.digest, nil }

// DiffID is the sha256 of the uncompressed tar.
func (l *Layer) DiffID() (v1.Hash, error) { return l.diffID, nil }

// Size is the compressed file's size in bytes.
func (l *Layer) Size() (int64, error) { return l.size, nil }

// MediaType is types.DockerLayer for gzip and types.OCILayerZStd for zstd.
func (l *Layer) MediaType() (types.MediaType, error) { return l.mediaType, nil }

// Compressed opens the layer file.
func (l *Layer) Compressed() (io.ReadCloser, error) { return os.Open(l.path) }

// Uncompressed opens the layer file and decompresses it while it is read.
func (l *Layer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	if l.mediaType == types.OCILayerZStd {
		dec, err := zstd.NewReader(f)
		if err != nil {
			f.Close()
			return nil, err
		}
		return &zstdReadCloser{dec: dec, f: f}, nil
	}
	gz, err := pgzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &gzipReadCloser{gz: gz, f: f}, nil
}

// Remove deletes the layer file; the Layer must not be used afterwards.
func (l *Layer) Remove() error { return os.Remove(l.path) }

type zstdReadCloser struct {
	dec *zstd.Decoder
	f   *os.File
}

func (z *zstdReadCloser) Read(p []byte) (int, error) { return z.dec.Read(p) }

func (z *zstdReadCloser) Close() error {
	z.dec.Close()
	return z.f.Close()
}

type gzipReadCloser struct {
	gz *pgzip.Reader
	f  *os.File
}

func (g *gzipReadCloser) Read(p []byte) (int, error) { return g.gz.Read(p) }

func (g *gzipReadCloser) Close() error {
	err := g.gz.Close()
	if cerr := g.f.Close(); err == nil {
		err = cerr
	}
	return err
}
