package snapshot

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
	"runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// pgzipBlockSize is the unit each core compresses; 1 MiB keeps both cores busy on big files.
const pgzipBlockSize = 1 << 20

// countingWriter counts the bytes written through it.
type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// newCompressor wraps out with the configured compressor.
func newCompressor(out io.Writer, c Compression) (io.WriteCloser, types.MediaType, error) {
	switch c.Algorithm {
	case "", "gzip":
		level := gzip.DefaultCompression
		if c.Level != 0 {
			level = c.Level
		}
		gz, err := pgzip.NewWriterLevel(out, level)
		if err != nil {
			return nil, "", fmt.Errorf("gzip level %d: %w", c.Level, err)
		}
		if err := gz.SetConcurrency(pgzipBlockSize, 2*runtime.GOMAXPROCS(0)); err != nil {
			return nil, "", err
		}
		return gz, types.DockerLayer, nil
	case "zstd":
		eopts := []zstd.EOption{zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0))}
		if c.Level != 0 {
			eopts = append(eopts, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(c.Level)))
		}
		enc, err := zstd.NewWriter(out, eopts...)
		if err != nil {
			return nil, "", fmt.Errorf("zstd: %w", err)
		}
		return enc, types.OCILayerZStd, nil
	default:
		return nil, "", fmt.Errorf("unknown compression %q (want gzip or zstd)", c.Algorithm)
	}
}

// writeLayer streams the tar produced by fill into a compressed file in dir, computing the
// diffID and digest in the same pass.
func writeLayer(dir string, c Compression, fill func(tar io.Writer) error) (l *Layer, err error) {
	began := time.Now()
	f, err := os.CreateTemp(dir, "layer-*")
	if err != nil {
		return nil, fmt.Errorf("creating layer file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	fileBuf := bufio.NewWriterSize(f, copyBufferSize)
	digest := sha256.New()
	counter := &countingWriter{}
	comp, mediaType, err := newCompressor(io.MultiWriter(digest, counter, fileBuf), c)
	if err != nil {
		return nil, err
	}
	diffID := sha256.New()
	tarBuf := bufio.NewWriterSize(io.MultiWriter(diffID, comp), 64<<10)
	if err := fill(tarBuf); err != nil {
		comp.Close()
		return nil, err
	}
	if err := tarBuf.Flush(); err != nil {
		comp.Close()
		return nil, fmt.Errorf("compressing layer: %w", err)
	}
	if err := comp.Close(); err != nil {
		return nil, fmt.Errorf("compressing layer: %w", err)
	}
	if err := fileBuf.Flush(); err != nil {
		return nil, fmt.Errorf("writing layer file %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("writing layer file %s: %w", f.Name(), err)
	}
	return &Layer{
		path:      f.Name(),
		digest:    sha256Hash(digest),
		diffID:    sha256Hash(diffID),
		size:      counter.n,
		mediaType: mediaType,
		writeTime: time.Since(began),
	}, nil
}

func sha256Hash(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
}
