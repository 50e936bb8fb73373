package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/dirspread"
	"github.com/kilnbuild/kiln/internal/fuzztar"
)

// maxSparse bounds the logical size of the sparse files of a fuzz input: extraction reads a
// hole as zeros, so beyond it an input is slow by design, not by a bug, and is skipped.
const maxSparse = 64 << 20

// FuzzExtract feeds arbitrary tar streams (their header checksums repaired, so the fuzzer
// gets past the tar reader) to Extract over a lower layer with escaping symlinks, with /ign
// ignored, and checks that it never panics, never changes anything outside the root or
// under /ign, and never takes more disk than the stream justifies.
func FuzzExtract(f *testing.F) {
	for _, s := range extractSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		requireRoot(t)
		stream := fuzztar.FixChecksums(data)
		extractInJail(t, func(string) []byte { return stream })
	})
}

// FuzzExtractEntries builds streams from a small alphabet of hostile entries (see
// fuzztar.Entries): "..", absolute paths, links through and to the jail's escaping symlinks,
// whiteouts, the ignored directory, duplicates, devices, huge and sparse sizes.
func FuzzExtractEntries(f *testing.F) {
	for _, s := range entrySeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		requireRoot(t)
		extractInJail(t, func(outside string) []byte { return fuzztar.Entries(data, outside) })
	})
}

// extractInJail extracts the stream made for a fresh jail (given the path of its outside
// directory) into the jail's root, and checks the jail. It does so three times: on the reading
// goroutine alone, with three writers, and with three writers into a root whose directories
// are placed by dirspread. All must fail or succeed alike and leave the same tree.
func extractInJail(t *testing.T, makeStream func(outside string) []byte) {
	start := time.Now()
	runs := []struct {
		workers int
		spread  bool
	}{{1, false}, {3, false}, {3, true}}
	var trees [3][]string
	var errs [3]error
	for i, run := range runs {
		j := fuzztar.New(t)
		stream := makeStream(j.Outside)
		if fuzztar.SparseSize(stream) > maxSparse {
			t.Skip("sparse files larger than the harness reads")
		}
		if run.spread {
			dirspread.Children(j.Root)
		}
		ignore := WithIgnore(func(p string) bool { return p == "/ign" })
		err := Extract(context.Background(), j.Root, bytes.NewReader(stream), ignore, WithExtractWorkers(run.workers))
		if err != nil && !strings.HasPrefix(err.Error(), "extracting ") && !strings.HasPrefix(err.Error(), "reading layer tar: ") {
			t.Errorf("error %q names neither the entry nor the tar", err)
		}
		j.Check(t, true, fuzztar.Budget(len(stream)))
		if run.spread {
			noFlagsLeft(t, j.Root)
		}
		errs[i], trees[i] = err, comparable(listing(t, j.Root), j, start)
	}
	for i := 1; i < len(runs); i++ {
		if (errs[0] == nil) != (errs[i] == nil) {
			t.Fatalf("with one goroutine: %v; with %+v: %v", errs[0], runs[i], errs[i])
		}
		if errs[0] == nil && !slices.Equal(trees[0], trees[i]) {
			t.Fatalf("one goroutine unpacked\n%s\n%+v unpacked\n%s", strings.Join(trees[0], "\n"), runs[i], strings.Join(trees[i], "\n"))
		}
	}
}

// comparable makes a listing of a jail's root independent of the jail: its paths are
// replaced by names, and times set during the run by "now".
func comparable(lines []string, j *fuzztar.Jail, start time.Time) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		l = strings.ReplaceAll(l, j.Outside, "OUTSIDE")
		out[i] = strings.ReplaceAll(l, j.Dir, "JAIL")
	}
	return timesSince(out, start)
}

// timesSince replaces in listing lines the times from start on (those of directories that a
// layer changed without describing them) by "now".
func timesSince(lines []string, start time.Time) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		if k := strings.Index(l, " mtime="); k >= 0 {
			rest := l[k+len(" mtime="):]
			end := strings.IndexByte(rest, ' ')
			if end < 0 {
				end = len(rest)
			}
			if ns, err := strconv.ParseInt(rest[:end], 10, 64); err == nil && ns >= start.Add(-time.Second).UnixNano() {
				l = l[:k] + " mtime=now" + rest[end:]
			}
		}
		out[i] = l
	}
	return out
}

// entrySeeds are structured inputs (4 bytes an entry, see fuzztar.Entries) for the escapes
// that matter: writing through up, abs, top and dotdot, links to OUTSIDE, whiteouts of the
// escaping symlinks, the ignored directory, and a sparse file.
var entrySeeds = [][]byte{
	{0, 0x62, 0x00, 0x30},                            // file up/kz-a
	{0, 0x72, 0x00, 0x30},                            // file abs/kz-a
	{0, 0x82, 0x00, 0x30},                            // file top/kz-a
	{0, 0x92, 0x00, 0x30},                            // file dotdot/kz-a
	{2, 0x00, 0, 7, 0, 0x02, 0x01, 0x30},             // symlink kz-a -> OUTSIDE, then file kz-a/kz-b
	{3, 0x10, 0, 8, 0, 0x10, 0, 0x50},                // hardlink kz-b -> OUTSIDE/secret, then write kz-b
	{3, 0x10, 0, 10, 0, 0x10, 0, 0x50},               // hardlink kz-b -> ../outside/secret
	{3, 0x10, 0, 11},                                 // hardlink kz-b -> up/secret
	{0, 0xa0, 0, 0x40},                               // write over shared (a hardlink of outside/secret)
	{0, 0x62, 0x0b, 0},                               // whiteout up/.wh.kz-a
	{0, 0x62, 0x0c, 0},                               // opaque up/.wh..wh..opq
	{0, 0xd0, 0, 0},                                  // whiteout .wh.up
	{0, 0xe2, 0x0f, 0x20},                            // file ign/kz-a (ignored)
	{1, 0xe0, 0, 0},                                  // dir ign
	{0, 0x32, 0x00, 0x30},                            // file ../kz-a
	{0, 0x01, 0, 0x30},                               // file /kz-a
	{1, 0x00, 0, 0, 0, 0x00, 0, 0x30, 2, 0x00, 0, 5}, // dir, file, symlink on one name
	{7, 0x10, 0, 0xf3},                               // sparse kz-b of 16 MiB
	{5, 0x10, 0, 0x30},                               // kz-b claiming 1 TiB
	{6, 0x10, 0, 0},                                  // char device kz-b
	{4, 0x10, 0, 0},                                  // fifo kz-b
}

// extractSeeds are raw streams: ordinary layers and the hostile ones the harness must
// survive.
func extractSeeds(t testing.TB) [][]byte {
	tw := func(hdrs ...*tar.Header) []byte {
		var buf bytes.Buffer
		w := tar.NewWriter(&buf)
		for _, h := range hdrs {
			content := []byte(nil)
			if h.Typeflag == tar.TypeReg {
				content = bytes.Repeat([]byte("x"), int(h.Size))
			}
			if h.Mode == 0 {
				h.Mode = 0o644
			}
			if err := w.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			w.Write(content)
		}
		w.Close()
		return buf.Bytes()
	}
	long := strings.Repeat("d/", 120) + "f"
	var seeds [][]byte
	seeds = append(seeds,
		tw(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755},
			&tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Size: 10},
			&tar.Header{Name: "bin/sh", Typeflag: tar.TypeSymlink, Linkname: "busybox"},
			&tar.Header{Name: "bin/ls", Typeflag: tar.TypeLink, Linkname: "bin/sh"},
			&tar.Header{Name: "usr/bin/su", Typeflag: tar.TypeReg, Size: 3, Mode: 0o4755,
				PAXRecords: map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02"}},
			&tar.Header{Name: "etc/.wh.old", Typeflag: tar.TypeReg},
			&tar.Header{Name: "var/.wh..wh..opq", Typeflag: tar.TypeReg},
			&tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3},
			&tar.Header{Name: "run/fifo", Typeflag: tar.TypeFifo}),
		tw(&tar.Header{Name: "../kz-a", Typeflag: tar.TypeReg, Size: 1}),
		tw(&tar.Header{Name: "/kz-a", Typeflag: tar.TypeReg, Size: 1}),
		tw(&tar.Header{Name: "top/kz-a", Typeflag: tar.TypeReg, Size: 1}),
		tw(&tar.Header{Name: "up/secret", Typeflag: tar.TypeReg, Size: 1}),
		tw(&tar.Header{Name: "abs/secret", Typeflag: tar.TypeReg, Size: 1}),
		tw(&tar.Header{Name: "dotdot/kz-a", Typeflag: tar.TypeReg, Size: 1}),
		tw(&tar.Header{Name: "up/.wh.secret", Typeflag: tar.TypeReg}),
		tw(&tar.Header{Name: "up/.wh..wh..opq", Typeflag: tar.TypeReg}),
		tw(&tar.Header{Name: "kz-b", Typeflag: tar.TypeLink, Linkname: "../outside/secret"}),
		tw(&tar.Header{Name: "kz-b", Typeflag: tar.TypeLink, Linkname: "up/secret"}),
		tw(&tar.Header{Name: "shared", Typeflag: tar.TypeReg, Size: 5, Mode: 0o777}),
		tw(&tar.Header{Name: "kz-a", Typeflag: tar.TypeSymlink, Linkname: "/"},
			&tar.Header{Name: "kz-a/kz-b", Typeflag: tar.TypeReg, Size: 1}),
		tw(&tar.Header{Name: "ign/keep", Typeflag: tar.TypeReg, Size: 1},
			&tar.Header{Name: "ign/.wh.keep", Typeflag: tar.TypeReg},
			&tar.Header{Name: ".wh.ign", Typeflag: tar.TypeReg}),
		tw(&tar.Header{Name: "kz-a", Typeflag: tar.TypeReg, Size: 1},
			&tar.Header{Name: "kz-a", Typeflag: tar.TypeDir},
			&tar.Header{Name: "kz-a/f", Typeflag: tar.TypeReg, Size: 2},
			&tar.Header{Name: "kz-a", Typeflag: tar.TypeReg, Size: 3}),
		tw(&tar.Header{Name: long, Typeflag: tar.TypeReg, Size: 1, Format: tar.FormatPAX}),
		tw(&tar.Header{Name: long, Typeflag: tar.TypeReg, Size: 1, Format: tar.FormatGNU}),
	)
	// Hand-made headers: sizes that lie, sparse files, and GNU's long-name types.
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	seeds = append(seeds,
		cat(fuzztar.Header("huge", "", tar.TypeReg, 0o644, 1<<40), []byte("short")),
		cat(fuzztar.Header("neg", "", tar.TypeReg, 0o644, -1), fuzztar.End()),
		cat(fuzztar.Pax("GNU.sparse.map", "0,5,1048576,5", "GNU.sparse.numblocks", "2", "GNU.sparse.size", "2097152"),
			fuzztar.Header("sparse", "", tar.TypeReg, 0o644, 10), fuzztar.Pad([]byte("abcdeABCDE")), fuzztar.End()),
		cat(fuzztar.Pax("GNU.sparse.major", "1", "GNU.sparse.minor", "0", "GNU.sparse.name", "sparse1",
			"GNU.sparse.realsize", "4194304"),
			fuzztar.Header("GNUSparseFile.0/sparse1", "", tar.TypeReg, 0o644, 512+5),
			fuzztar.Pad([]byte("1\n0\n5\n")), fuzztar.Pad([]byte("hello")), fuzztar.End()),
		cat(fuzztar.Header("././@LongLink", "", tar.TypeGNULongName, 0o644, 9), fuzztar.Pad([]byte("../kz-a\x00\x00")),
			fuzztar.Header("x", "", tar.TypeReg, 0o644, 0), fuzztar.End()),
		cat(fuzztar.Pax("path", "/../../kz-a", "linkpath", "../../outside/secret"),
			fuzztar.Header("x", "", tar.TypeLink, 0o644, 0), fuzztar.End()),
		oldGNUSparse(),
		cat(fuzztar.Pax("size", "99999999999999999999"), fuzztar.Header("x", "", tar.TypeReg, 0o644, 0), fuzztar.End()),
	)
	return seeds
}

// oldGNUSparse is an old GNU sparse entry ('S'): 5 bytes of data at offset 0 of a 2 MiB file.
func oldGNUSparse() []byte {
	h := fuzztar.Header("oldsparse", "", tar.TypeGNUSparse, 0o644, 5)
	copy(h[345:], make([]byte, 155)) // no ustar prefix: the GNU header keeps its sparse map there
	copy(h[257:265], "ustar  \x00")
	copy(h[386:398], "00000000000\x00")
	copy(h[398:410], "00000000005\x00")
	copy(h[483:495], "00010000000\x00")
	fuzztar.SetChecksum(h)
	return bytes.Join([][]byte{h, fuzztar.Pad([]byte("hello")), fuzztar.End()}, nil)
}
