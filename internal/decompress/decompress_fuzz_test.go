package decompress

import (
	"bytes"
	"encoding/hex"
	"hash/crc32"
	"io"
	"runtime"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// maxOut is how much of a stream the harness reads: a bomb may expand without end, and the
// layer extraction that reads it streams, so only what Reader does before and while
// reading matters.
const maxOut = 4 << 20

// maxAlloc bounds what Reader and reading maxOut bytes may allocate: pgzip's read-ahead
// blocks and the zstd and xz windows of ordinary streams fit well below it.
const maxAlloc = 256 << 20

// FuzzReader feeds arbitrary bytes, and mutations of small gzip, zstd, xz and bzip2 streams,
// to Reader and reads up to maxOut bytes of the result. Nothing may panic, and what the
// stream's headers claim (window and dictionary sizes) must not make it allocate more than
// maxAlloc.
func FuzzReader(f *testing.F) {
	for _, s := range readerSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r, done, err := Reader(bytes.NewReader(data))
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(r, maxOut))
			done()
		}
		runtime.ReadMemStats(&after)
		if grew := after.TotalAlloc - before.TotalAlloc; grew > maxAlloc {
			t.Fatalf("decompressing a %d-byte stream allocated %d MiB", len(data), grew>>20)
		}
	})
}

var payload = []byte("kiln layer bytes, kiln layer bytes, kiln layer bytes\n")

func readerSeeds(t testing.TB) [][]byte {
	var gz, zs, x bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(payload)
	gw.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(payload)
	zw.Close()
	xw, err := xz.NewWriter(&x)
	if err != nil {
		t.Fatal(err)
	}
	xw.Write(payload)
	xw.Close()
	bz2 := []byte("BZh91AY&SY\xb4C\xddS\x00\x00\x0eQ\x80\x00\x10@\x042-\x1c  \x00!\xb5F\x8d\x06\x9e\xa1\x00\x00*\x8c*!Q#\x18\xc8\\\xb0\xc9\x1a4xg\xc5\xdc\x91N\x14$-\x10\xf7T\xc0")
	return [][]byte{
		payload,
		nil,
		{0x1f},
		gz.Bytes(),
		append(append([]byte(nil), gz.Bytes()...), gz.Bytes()...), // two gzip members
		zs.Bytes(),
		x.Bytes(),
		bz2,
		xzWithDict(t, 0x25), // xz --lzma2=dict=1536MiB
		xzWithDict(t, 0x28), // the largest dictionary the format can name (4 GiB)
		// zstd frames with a 512 MiB and a 2 GiB window and one raw block of "hello".
		append([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x98, 0x29, 0x00, 0x00}, "hello"...),
		append([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xa8, 0x29, 0x00, 0x00}, "hello"...),
		// A single-segment zstd frame whose content size (its window) claims 1 TiB and 256 MiB.
		append([]byte{0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0, 0, 0, 1, 0, 0, 0x29, 0x00, 0x00}, "hello"...),
		append([]byte{0x28, 0xb5, 0x2f, 0xfd, 0xa0, 0, 0, 0, 0x10, 0x29, 0x00, 0x00}, "hello"...),
	}
}

// xzWithDict is `xz --lzma2=dict=1536MiB` of payload with the dictionary size code of its
// block header set to code (its CRC32 fixed).
func xzWithDict(t testing.TB, code byte) []byte {
	b, err := hex.DecodeString("fd377a585a000004e6d6b44602002101250000003b787b41e00034001b5d00359a49d78c042f0eb98dc3f62a719a788517fd24944bf4163000000000c44faae9e15bad59000137353cd132e61fb6f37d010000000004595a")
	if err != nil {
		t.Fatal(err)
	}
	// The block header starts at 12: size byte 0x02 (12 bytes), flags, filter 0x21 with one
	// byte of properties (the dictionary size code), padding, CRC32.
	hdr := b[12:24]
	hdr[4] = code
	sum := crc32.ChecksumIEEE(hdr[:8])
	hdr[8], hdr[9], hdr[10], hdr[11] = byte(sum), byte(sum>>8), byte(sum>>16), byte(sum>>24)
	return b
}

// FuzzXZGuardRoundTrip checks that the guard in front of the xz decoder follows every stream
// ulikunitz/xz writes (any block size, check type and dictionary): what goes
// in comes out.
func FuzzXZGuardRoundTrip(f *testing.F) {
	f.Add(payload, byte(1), uint16(0), byte(0))
	f.Add(bytes.Repeat(payload, 100), byte(4), uint16(300), byte(20))
	f.Add([]byte{}, byte(0), uint16(1), byte(3))
	f.Fuzz(func(t *testing.T, data []byte, check byte, blockSize uint16, dictShift byte) {
		c := xz.WriterConfig{
			CheckSum:  []byte{xz.None, xz.CRC32, xz.CRC64, xz.SHA256}[check%4],
			BlockSize: int64(blockSize) + 1,
			DictCap:   4096 << (dictShift % 12), // 4 KiB to 8 MiB
		}
		var buf bytes.Buffer
		w, err := c.NewWriter(&buf)
		if err != nil {
			t.Skip(err)
		}
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Skip(err)
		}
		r, done, err := Reader(&buf)
		if err != nil {
			t.Fatal(err)
		}
		defer done()
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read %d of %d bytes: %v", len(got), len(data), err)
		}
	})
}
