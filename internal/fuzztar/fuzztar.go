// Package fuzztar serves the fuzz targets of everything that unpacks a tar stream (layer
// extraction, ADD archives, context archives): it repairs the header checksums of a mutated
// stream so that the fuzzer reaches the code behind the tar reader's checksum test, builds
// streams of hostile entries from a few bytes (escapes through "..", absolute paths,
// symlinks and hardlinks, whiteouts, duplicates, huge and sparse sizes), and after each input
// checks that nothing outside the directory unpacked into changed and that the disk used
// grew with the input, not with what its headers claim.
//
// It is imported by tests only.
package fuzztar

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/kilnbuild/kiln/internal/sparse"
)

// block is the tar block size.
const block = 512

// FixChecksums returns a copy of data in which every header block the tar reader would meet
// has a correct checksum: headers are followed by their data (their size field, octal or
// base-256, rounded up to blocks; none for links, dirs, devices and fifos) and by the
// extension blocks of an old GNU sparse header. It stops at a size it cannot read.
func FixChecksums(data []byte) []byte {
	out := append([]byte(nil), data...)
	for off := 0; off+block <= len(out); {
		h := out[off : off+block]
		if allZero(h) {
			off += block
			continue
		}
		SetChecksum(h)
		size, ok := parseSize(h[124:136])
		if !ok || size < 0 {
			break
		}
		off += block
		typ := h[156]
		if typ == tar.TypeGNUSparse && h[482] != 0 {
			for off+block <= len(out) { // extension blocks: 21 entries then an "extended" flag
				ext := out[off : off+block]
				off += block
				if ext[504] == 0 {
					break
				}
			}
		}
		switch typ {
		case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
			size = 0
		}
		blocks := (size + block - 1) / block
		if blocks > int64(len(out)) {
			break
		}
		off += int(blocks) * block
	}
	return out
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// SetChecksum writes a header block's checksum: the sum of its bytes with the checksum field
// read as spaces.
func SetChecksum(h []byte) {
	copy(h[148:156], "        ")
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
}

// parseSize reads a numeric header field as the tar reader does: base-256 when the top bit of
// the first byte is set, else octal between spaces and NULs.
func parseSize(f []byte) (int64, bool) {
	if len(f) > 0 && f[0]&0x80 != 0 {
		var n int64
		for i, c := range f {
			if i == 0 {
				c &= 0x7f
			}
			if n > (1<<62)>>8 {
				return 0, false
			}
			n = n<<8 | int64(c)
		}
		return n, true
	}
	s := strings.Trim(string(f), " \x00")
	if s == "" {
		return 0, true
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 8, 64)
	return n, err == nil
}

// Header is a raw ustar header block for name, with a correct checksum. It writes what
// archive/tar's writer refuses to (pax and GNU extension types, sizes that do not match the
// data that follows).
func Header(name, linkname string, typ byte, mode, size int64) []byte {
	h := make([]byte, block)
	copy(h[0:100], name)
	copy(h[100:108], fmt.Sprintf("%07o\x00", mode&0o7777777))
	copy(h[108:116], "0000000\x00")
	copy(h[116:124], "0000000\x00")
	if size >= 0 && size < 1<<33 {
		copy(h[124:136], fmt.Sprintf("%011o\x00", size))
	} else { // base-256
		h[124] = 0x80
		for i := 135; i > 124; i-- {
			h[i] = byte(size)
			size >>= 8
		}
	}
	copy(h[136:148], "00000000000\x00")
	h[156] = typ
	copy(h[157:257], linkname)
	copy(h[257:265], "ustar\x0000")
	SetChecksum(h)
	return h
}

// Pax is a pax extended header ('x') carrying records, followed by its data blocks.
func Pax(records ...string) []byte {
	var data []byte
	for i := 0; i+1 < len(records); i += 2 {
		rec := " " + records[i] + "=" + records[i+1] + "\n"
		n := len(rec)
		for len(strconv.Itoa(n))+len(rec) != n {
			n = len(strconv.Itoa(n)) + len(rec)
		}
		data = append(data, strconv.Itoa(n)+rec...)
	}
	return append(Header("PaxHeaders/x", "", tar.TypeXHeader, 0o644, int64(len(data))), Pad(data)...)
}

// Pad is data padded with zeros to whole blocks.
func Pad(data []byte) []byte {
	if r := len(data) % block; r != 0 {
		return append(append([]byte(nil), data...), make([]byte, block-r)...)
	}
	return data
}

// End is the two zero blocks that end a tar stream.
func End() []byte { return make([]byte, 2*block) }

// Names of the structured alphabet. Components that may escape the root on a bug land on
// these names, so a check for them outside the jail finds the escape.
var canaries = []string{"kz-a", "kz-b", "kz-c"}

// components are the path components Entries picks from: plain names, the tricky ones, the
// symlinks and hardlink of the lower layer New writes, whiteouts and the ignored directory.
var components = []string{
	"kz-a", "kz-b", "kz-c", "..", ".", "", "up", "abs",
	"top", "dotdot", "shared", ".wh.kz-a", ".wh..wh..opq", ".wh.up", "ign", "kz-a",
}

// linkTargets are the link names Entries picks from; OUTSIDE stands for the absolute host
// path of the jail's outside directory.
var linkTargets = []string{
	"kz-a", "kz-b/kz-c", "..", "../..", "../../../../../..", "/", "/kz-a", "OUTSIDE",
	"OUTSIDE/secret", "../outside", "../outside/secret", "up/secret", "abs/secret", "top/kz-a", "shared", "ign/keep",
}

// modes are the permission bits Entries picks from.
var modes = []int64{0o644, 0o755, 0o000, 0o4755, 0o2755, 0o1777, 0o444, 0o700}

// Entries turns data into a tar stream, four bytes an entry:
//
//	byte 0: the kind (low 3 bits: file, dir, symlink, hardlink, fifo, file claiming 1 TiB
//	        with a few bytes of data, char device 1:3, pax sparse file of 1-16 MiB) and the
//	        mode (the other bits)
//	byte 1: a leading "/" (bit 0), 1-3 components (bits 1-2), the first component (bits 4-7)
//	byte 2: the second component (low 4 bits) and the third (high 4 bits)
//	byte 3: the link target (low 4 bits) and the content length (high 4 bits, times 7; for
//	        a sparse file, its size in MiB, less one)
//
// Components come from a small alphabet with "..", ".", empty ones, the jail's escaping
// symlinks, whiteouts and the ignored directory; link targets from one with relative and
// absolute escapes, the host path of the jail's outside directory (outside) and paths through
// the escaping symlinks. A truncated last entry is left out; the stream ends with End.
func Entries(data []byte, outside string) []byte {
	var out []byte
	for ; len(data) >= 4; data = data[4:] {
		b := data[:4]
		kind, mode := b[0]&7, modes[int(b[0]>>3)%len(modes)]
		n := 1 + int(b[1]>>1&3)%3
		idx := []int{int(b[1] >> 4), int(b[2] & 15), int(b[2] >> 4)}
		parts := make([]string, n)
		for i := range parts {
			parts[i] = components[idx[i]]
		}
		name := strings.Join(parts, "/")
		if b[1]&1 != 0 {
			name = "/" + name
		}
		link := strings.ReplaceAll(linkTargets[b[3]&15], "OUTSIDE", outside)
		content := bytes.Repeat([]byte{'x'}, int(b[3]>>4)*7)
		switch kind {
		case 0:
			out = append(out, Header(name, "", tar.TypeReg, mode, int64(len(content)))...)
			out = append(out, Pad(content)...)
		case 1:
			out = append(out, Header(name, "", tar.TypeDir, mode, 0)...)
		case 2:
			out = append(out, Header(name, link, tar.TypeSymlink, 0o777, 0)...)
		case 3:
			out = append(out, Header(name, link, tar.TypeLink, mode, 0)...)
		case 4:
			out = append(out, Header(name, "", tar.TypeFifo, mode, 0)...)
		case 5: // claims far more than the stream holds: the reader must fail, not allocate
			out = append(out, Header(name, "", tar.TypeReg, mode, 1<<40)...)
			return append(out, Pad(content)...)
		case 6:
			h := Header(name, "", tar.TypeChar, mode, 0)
			copy(h[329:337], "0000001\x00")
			copy(h[337:345], "0000003\x00")
			SetChecksum(h)
			out = append(out, h...)
		case 7: // pax sparse 0.1: len(content) bytes of data, then a hole up to 1-16 MiB
			logical := int64(1+int(b[3]>>4)) << 20
			out = append(out, Pax("GNU.sparse.map", fmt.Sprintf("0,%d", len(content)),
				"GNU.sparse.numblocks", "1", "GNU.sparse.size", strconv.FormatInt(logical, 10))...)
			out = append(out, Header(name, "", tar.TypeReg, mode, int64(len(content)))...)
			out = append(out, Pad(content)...)
		}
	}
	return append(out, End()...)
}

// SparseSize is the sum of the logical sizes of the sparse entries of stream (pax GNU.sparse
// records, or old GNU type 'S'), read from the headers alone. Other entries cannot claim
// more than the stream holds, but a sparse one costs time with its logical size, so a harness
// skips inputs claiming too much. Reading stops at the first error.
func SparseSize(stream []byte) int64 {
	tr := tar.NewReader(bytes.NewReader(stream))
	var total int64
	for {
		hdr, err := tr.Next()
		if err != nil {
			return total
		}
		if hdr.Size > 0 && sparse.IsSparse(hdr) {
			total += hdr.Size
			if total < 0 {
				return 1<<63 - 1
			}
		}
	}
}

// Jail is a fresh directory holding Root, the directory to unpack into, Outside, its
// sibling, which stands for the rest of the host, and Context, an empty directory for the
// harness's own files (an archive to ADD), which Check does not look into. Root starts as a lower layer would leave it:
// a directory, symlinks escaping it (up -> ../outside, abs -> the absolute path of Outside,
// top -> /, dotdot -> ../../../../..), a hardlink of a file in Outside (shared), and ign/keep,
// for harnesses that pass an ignore list holding /ign.
type Jail struct {
	Dir, Root, Outside, Context string
	before                      map[string]string
}

// New makes a Jail in a fresh directory (see Dir), removed when t ends.
func New(t testing.TB) *Jail {
	t.Helper()
	dir := jailDir(t)
	j := &Jail{Dir: dir, Root: filepath.Join(dir, "root"), Outside: filepath.Join(dir, "outside"),
		Context: filepath.Join(dir, "context")}
	must(t, os.Mkdir(j.Context, 0o755))
	must(t, os.MkdirAll(filepath.Join(j.Outside, "dir"), 0o755))
	must(t, os.WriteFile(filepath.Join(j.Outside, "secret"), []byte("outside"), 0o644))
	must(t, os.WriteFile(filepath.Join(j.Outside, "dir", "f"), []byte("outside"), 0o600))
	must(t, os.MkdirAll(filepath.Join(j.Root, "kz-a"), 0o755))
	must(t, os.MkdirAll(filepath.Join(j.Root, "ign"), 0o755))
	must(t, os.WriteFile(filepath.Join(j.Root, "ign", "keep"), []byte("ignored"), 0o644))
	must(t, os.WriteFile(filepath.Join(j.Root, "kz-a", "f"), []byte("lower"), 0o644))
	must(t, os.Symlink("../outside", filepath.Join(j.Root, "up")))
	must(t, os.Symlink(j.Outside, filepath.Join(j.Root, "abs")))
	must(t, os.Symlink("/", filepath.Join(j.Root, "top")))
	must(t, os.Symlink("../../../../..", filepath.Join(j.Root, "dotdot")))
	must(t, os.Link(filepath.Join(j.Outside, "secret"), filepath.Join(j.Root, "shared")))
	for _, c := range canaries {
		for _, d := range []string{"/", "/tmp", filepath.Dir(dir), dir} {
			if _, err := os.Lstat(filepath.Join(d, c)); err == nil {
				t.Fatalf("%s exists before the input: remove it, it is the fuzz targets' canary", filepath.Join(d, c))
			}
		}
	}
	j.before = j.state(t, true)
	return j
}

// jailDir makes a directory for a jail in $KILN_FUZZ_DIR, else in /dev/shm when it is a
// writable directory (a fuzz target makes and removes thousands of directories a second,
// which a tmpfs does ten times faster than a disk), else in t's temporary directory.
func jailDir(t testing.TB) string {
	t.Helper()
	base := os.Getenv("KILN_FUZZ_DIR")
	if base == "" && syscall.Access("/dev/shm", 2 /* W_OK */) == nil {
		base = "/dev/shm"
	}
	if base == "" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp(base, "kiln-fuzz-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Check fails t if anything changed outside Root (in Outside, next to Root, or the canary
// names in /, /tmp and the jail's parent), if protectIgnored and something under Root/ign
// changed, or if the regular files under Root hold more than budget bytes on disk.
func (j *Jail) Check(t testing.TB, protectIgnored bool, budget int64) {
	t.Helper()
	after := j.state(t, protectIgnored)
	var diffs []string
	for k, v := range j.before {
		if !protectIgnored && strings.HasPrefix(k, "root/ign") {
			continue
		}
		if after[k] != v {
			diffs = append(diffs, fmt.Sprintf("%s: %q, was %q", k, after[k], v))
		}
	}
	for k, v := range after {
		if _, ok := j.before[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: new %q", k, v))
		}
	}
	for _, c := range canaries {
		for _, d := range []string{"/", "/tmp", filepath.Dir(j.Dir), j.Dir} {
			if _, err := os.Lstat(filepath.Join(d, c)); err == nil {
				os.RemoveAll(filepath.Join(d, c))
				diffs = append(diffs, filepath.Join(d, c)+" was written")
			}
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Fatalf("unpacking changed what lies outside the root:\n%s", strings.Join(diffs, "\n"))
	}
	if used := diskUse(t, j.Root); used > budget {
		t.Fatalf("the files unpacked use %d bytes of disk, more than the input justifies (%d)", used, budget)
	}
}

// state describes every entry of Outside, every entry of the jail directory other than Root,
// and with ignored, everything under Root/ign: type, mode, owner, size, content, link target.
func (j *Jail) state(t testing.TB, ignored bool) map[string]string {
	t.Helper()
	m := map[string]string{}
	ents, err := os.ReadDir(j.Dir)
	must(t, err)
	for _, e := range ents {
		if e.Name() != "root" {
			m[e.Name()] = "present"
		}
	}
	walk := func(top string) {
		err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && p == top {
					return nil
				}
				return err
			}
			rel, _ := filepath.Rel(j.Dir, p)
			m[rel] = describe(p)
			return nil
		})
		must(t, err)
	}
	walk(j.Outside)
	if ignored {
		walk(filepath.Join(j.Root, "ign"))
	}
	return m
}

func describe(p string) string {
	fi, err := os.Lstat(p)
	if err != nil {
		return err.Error()
	}
	st := fi.Sys().(*syscall.Stat_t)
	s := fmt.Sprintf("%v %d:%d %d %d", fi.Mode(), st.Uid, st.Gid, fi.Size(), fi.ModTime().UnixNano())
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, _ := os.Readlink(p)
		s += " -> " + target
	case fi.Mode().IsRegular():
		f, err := os.Open(p)
		if err != nil {
			return s + " " + err.Error()
		}
		defer f.Close()
		h := sha256.New()
		io.Copy(h, f)
		s += fmt.Sprintf(" %x", h.Sum(nil)[:8])
	}
	return s
}

// diskUse is the disk space the regular files under root take (each inode once).
func diskUse(t testing.TB, root string) int64 {
	t.Helper()
	seen := map[uint64]bool{}
	var total int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		st := fi.Sys().(*syscall.Stat_t)
		if !seen[st.Ino] {
			seen[st.Ino] = true
			total += st.Blocks * 512
		}
		return nil
	})
	must(t, err)
	return total
}

// Budget is the disk a stream of n bytes may take once unpacked: a block per header or
// less of content, and some slack for the jail's own files.
func Budget(n int) int64 { return 1<<20 + 16*int64(n) }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
