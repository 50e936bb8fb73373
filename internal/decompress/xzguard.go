package decompress

import (
	"errors"
	"fmt"
	"io"

	"github.com/ulikunitz/xz/lzma"
)

// xzGuard passes an xz stream through to the xz decoder and follows its structure (stream
// header, block headers, LZMA2 chunks, block padding and check, index, footer, stream
// padding) to refuse a block whose LZMA2 dictionary exceeds maxWindow before the decoder
// sees its header: the decoder allocates the whole dictionary a block names, up to 4 GiB,
// and has no option to bound it. Bytes are checked before they are handed on, so a block
// header is refused before the decoder reads its last byte.
type xzGuard struct {
	r     io.Reader
	state xzState
	buf   []byte // the bytes of the header being collected
	want  int    // how many bytes buf needs
	skip  int64  // bytes to pass through unexamined
	check int    // size of the blocks' check field
	block int64  // bytes of the current block's LZMA2 data so far
	// The index: its size so far, its record count as read so far, and the varints left.
	indexSize  int64
	count      uint64
	shift      uint
	countRead  bool
	varintLeft uint64
	err        error
}

type xzState int

const (
	xzStreamHeader  xzState = iota // 12 bytes
	xzBlockOrIndex                 // a block header's size byte, or 0 for the index
	xzBlockHeader                  // the rest of a block header
	xzChunk                        // an LZMA2 control byte
	xzChunkHeader                  // the rest of an LZMA2 chunk header
	xzIndex                        // the index's varints
	xzStreamPadding                // 4 zero bytes of padding, or the start of a stream
)

func newXZGuard(r io.Reader) *xzGuard {
	g := &xzGuard{r: r}
	g.expect(xzStreamHeader, 12)
	return g
}

func (g *xzGuard) expect(s xzState, n int) {
	g.state, g.want, g.buf = s, n, g.buf[:0]
}

func (g *xzGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	if ferr := g.feed(p[:n]); ferr != nil {
		g.err = ferr
		return 0, ferr
	}
	return n, err
}

var errXZMalformed = errors.New("xz: malformed stream")

// feed follows the structure through b.
func (g *xzGuard) feed(b []byte) error {
	for len(b) > 0 {
		if g.skip > 0 {
			n := min(int64(len(b)), g.skip)
			g.skip -= n
			b = b[n:]
			continue
		}
		if g.want > len(g.buf) {
			n := min(len(b), g.want-len(g.buf))
			g.buf = append(g.buf, b[:n]...)
			b = b[n:]
			if len(g.buf) < g.want {
				continue
			}
		}
		if err := g.step(); err != nil {
			return err
		}
	}
	return nil
}

// step handles the complete piece in buf and says what comes next.
func (g *xzGuard) step() error {
	h := g.buf
	switch g.state {
	case xzStreamHeader:
		switch h[7] { // the check type: none, CRC32, CRC64, SHA-256
		case 0x0:
			g.check = 0
		case 0x1:
			g.check = 4
		case 0x4:
			g.check = 8
		case 0xa:
			g.check = 32
		default:
			return errXZMalformed
		}
		g.expect(xzBlockOrIndex, 1)
	case xzBlockOrIndex:
		if h[0] == 0 {
			g.indexSize, g.count, g.shift, g.countRead = 1, 0, 0, false
			g.expect(xzIndex, 1)
			return nil
		}
		g.want = (int(h[0]) + 1) * 4
		g.state = xzBlockHeader
	case xzBlockHeader:
		if err := checkBlockHeader(h); err != nil {
			return err
		}
		g.block = 0
		g.expect(xzChunk, 1)
	case xzChunk:
		c := h[0]
		g.block++
		switch {
		case c == 0: // the end of the block's data: padding to 4 bytes, then the check
			g.skip = (4-g.block%4)%4 + int64(g.check)
			g.expect(xzBlockOrIndex, 1)
		case c == 1 || c == 2: // uncompressed chunk: 2 bytes of size
			g.want = 3
			g.state = xzChunkHeader
		case c >= 0x80: // LZMA chunk: 2 bytes of unpacked, 2 of packed size, and properties
			g.want = 5
			if c >= 0xc0 {
				g.want = 6
			}
			g.state = xzChunkHeader
		default:
			return errXZMalformed
		}
	case xzChunkHeader:
		size := int64(h[len(h)-2])<<8 | int64(h[len(h)-1]) + 1
		if h[0] >= 0x80 {
			size = int64(h[3])<<8 | int64(h[4]) + 1
		}
		g.block += int64(len(h)-1) + size
		g.skip = size
		g.expect(xzChunk, 1)
	case xzIndex: // a record count, then two varints a record
		c := h[0]
		g.indexSize++
		switch {
		case !g.countRead:
			if g.shift > 56 {
				return errXZMalformed
			}
			g.count |= uint64(c&0x7f) << g.shift
			g.shift += 7
			if c&0x80 == 0 {
				if g.count > 1<<40 {
					return errXZMalformed
				}
				g.countRead, g.varintLeft = true, 2*g.count
			}
		case c&0x80 == 0:
			g.varintLeft--
		}
		if g.countRead && g.varintLeft == 0 {
			// Padding to 4 bytes and the CRC32, then the 12-byte footer.
			g.skip = (4-g.indexSize%4)%4 + 4 + 12
			g.expect(xzStreamPadding, 4)
			return nil
		}
		g.expect(xzIndex, 1)
	case xzStreamPadding:
		if h[0]|h[1]|h[2]|h[3] == 0 {
			g.expect(xzStreamPadding, 4)
			return nil
		}
		g.state, g.want = xzStreamHeader, 12
	}
	return nil
}

// checkBlockHeader refuses a block header whose LZMA2 dictionary exceeds maxWindow. Other
// faults are the decoder's to report.
func checkBlockHeader(h []byte) error {
	if len(h) < 8 {
		return errXZMalformed
	}
	flags := h[1]
	p := h[2 : len(h)-4]
	varint := func() (uint64, bool) {
		var x uint64
		for i := 0; i < len(p) && i < 9; i++ {
			x |= uint64(p[i]&0x7f) << (7 * i)
			if p[i]&0x80 == 0 {
				p = p[i+1:]
				return x, true
			}
		}
		return 0, false
	}
	for _, present := range []bool{flags&0x40 != 0, flags&0x80 != 0} { // packed, unpacked size
		if present {
			if _, ok := varint(); !ok {
				return errXZMalformed
			}
		}
	}
	for range int(flags&3) + 1 {
		id, ok1 := varint()
		size, ok2 := varint()
		if !ok1 || !ok2 || size > uint64(len(p)) {
			return errXZMalformed
		}
		if id == 0x21 && size == 1 { // LZMA2: its one property is the dictionary size
			dict, err := lzma.DecodeDictCap(p[0])
			if err != nil {
				return err
			}
			if dict > maxWindow {
				return fmt.Errorf("xz: a block asks for a dictionary of %d MiB; the limit is %d MiB", dict>>20, maxWindow>>20)
			}
		}
		p = p[size:]
	}
	return nil
}
