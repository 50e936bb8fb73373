// Package decompress recognises a compressed stream by its first bytes (gzip, zstd, xz,
// bzip2, or none) and returns the decompressed stream. Layers, ADD archives and context
// archives all come through it, so every archive kind is recognised the same way everywhere.
package decompress

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/ulikunitz/xz"
)

// Magic numbers of the formats recognised, by content and never by file name.
var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicBzip2 = []byte("BZh")
)

// maxWindow bounds the zstd window and xz dictionary a stream may ask for: the decoders
// allocate it up front, so without a bound a stream of a few bytes claiming gigabytes takes
// them. 128 MiB is the zstd tool's own default limit, twice what xz -9 uses.
const maxWindow = 128 << 20

// Reader returns r decompressed and a function releasing the decoder. gzip goes through pgzip,
// which inflates ahead on another core while the caller consumes the stream. A stream with no
// known magic is returned as is (a plain tar).
func Reader(r io.Reader) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 1<<20)
	head, err := br.Peek(6)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, nil, err
	}
	nothing := func() {}
	switch {
	case bytes.HasPrefix(head, magicGzip):
		zr, err := pgzip.NewReaderN(br, 1<<20, 4)
		if err != nil {
			return nil, nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, func() { zr.Close() }, nil
	case bytes.HasPrefix(head, magicZstd):
		zr, err := zstd.NewReader(br, zstd.WithDecoderMaxWindow(maxWindow), zstd.WithDecoderMaxMemory(maxWindow))
		if err != nil {
			return nil, nil, fmt.Errorf("zstd: %w", err)
		}
		return zr, zr.Close, nil
	case bytes.HasPrefix(head, magicXz):
		zr, err := xz.NewReader(newXZGuard(br))
		if err != nil {
			return nil, nil, fmt.Errorf("xz: %w", err)
		}
		return zr, nothing, nil
	case bytes.HasPrefix(head, magicBzip2):
		return bzip2.NewReader(br), nothing, nil
	}
	return br, nothing, nil
}
