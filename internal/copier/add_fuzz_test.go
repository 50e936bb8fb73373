package copier

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/fuzztar"
	"github.com/klauspost/compress/gzip"
)

// maxSparse bounds the logical size of the sparse files of a fuzz input (see the snapshot
// package's FuzzExtract).
const maxSparse = 64 << 20

// FuzzAddArchive ADDs an arbitrary tar stream (header checksums repaired; gzip-compressed
// when how has bit 2 set) as a local archive into a jail's root, at one of four destinations
// (how's low bits: /kz-b/, /, through the escaping symlink up, or a dir that is a file), with
// /ign on the ignore list. ADD must not panic, must not change anything outside the root or
// under /ign, and must not take more disk than the archive justifies.
func FuzzAddArchive(f *testing.F) {
	for i, s := range addSeeds(f) {
		f.Add(s, uint8(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, how uint8) {
		requireRootFuzz(t)
		stream := fuzztar.FixChecksums(data)
		addInJail(t, func(string) []byte { return stream }, how)
	})
}

// FuzzAddArchiveEntries ADDs archives of hostile entries built by fuzztar.Entries.
func FuzzAddArchiveEntries(f *testing.F) {
	f.Add([]byte{0, 0x62, 0x00, 0x30}, uint8(0))                            // up/kz-a
	f.Add([]byte{2, 0x00, 0, 7, 0, 0x02, 0x01, 0x30}, uint8(1))             // kz-a -> OUTSIDE, kz-a/kz-b
	f.Add([]byte{3, 0x10, 0, 8, 0, 0x10, 0, 0x50}, uint8(0))                // hardlink to OUTSIDE/secret, rewrite
	f.Add([]byte{3, 0x10, 0, 10}, uint8(1))                                 // hardlink to ../outside/secret
	f.Add([]byte{0, 0xa0, 0, 0x40}, uint8(1))                               // rewrite shared
	f.Add([]byte{1, 0x00, 0, 0, 2, 0x00, 0, 5, 0, 0x02, 0x01, 0}, uint8(5)) // dir, symlink to /, file below
	f.Add([]byte{7, 0x10, 0, 0xf3}, uint8(0))                               // sparse
	f.Add([]byte{0, 0xe2, 0x0f, 0x20}, uint8(1))                            // ign/kz-a
	f.Fuzz(func(t *testing.T, data []byte, how uint8) {
		requireRootFuzz(t)
		addInJail(t, func(outside string) []byte { return fuzztar.Entries(data, outside) }, how)
	})
}

func requireRootFuzz(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown, mknod)")
	}
}

// addInJail writes the archive made for a fresh jail into its context directory and ADDs it.
func addInJail(t *testing.T, makeArchive func(outside string) []byte, how uint8) {
	j := fuzztar.New(t)
	stream := makeArchive(j.Outside)
	if fuzztar.SparseSize(stream) > maxSparse {
		t.Skip("sparse files larger than the harness reads")
	}
	if how&4 != 0 {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(stream)
		w.Close()
		stream = buf.Bytes()
	}
	if err := os.WriteFile(filepath.Join(j.Context, "a.tar"), stream, 0o644); err != nil {
		t.Fatal(err)
	}
	dest := []string{"/kz-b/", "/", "up/", "/kz-a/f/"}[how&3]
	_, _ = Add(context.Background(), Request{
		SrcRoot: j.Context, Sources: []string{"a.tar"}, Root: j.Root, Dest: dest, WorkDir: "/",
		UID: -1, GID: -1,
		Ignore: func(p string) bool { return p == "/ign" || strings.HasPrefix(p, "/ign/") },
	}, AddOptions{})
	j.Check(t, true, fuzztar.Budget(len(stream)))
}

// addSeeds are archives ADD meets: ordinary ones and hostile ones.
func addSeeds(t testing.TB) [][]byte {
	tw := func(hdrs ...*tar.Header) []byte {
		var buf bytes.Buffer
		w := tar.NewWriter(&buf)
		for _, h := range hdrs {
			if h.Mode == 0 {
				h.Mode = 0o644
			}
			if err := w.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			if h.Typeflag == tar.TypeReg {
				w.Write(bytes.Repeat([]byte("x"), int(h.Size)))
			}
		}
		w.Close()
		return buf.Bytes()
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	return [][]byte{
		tw(&tar.Header{Name: "app/", Typeflag: tar.TypeDir, Mode: 0o755},
			&tar.Header{Name: "app/main", Typeflag: tar.TypeReg, Size: 4, Mode: 0o755},
			&tar.Header{Name: "app/link", Typeflag: tar.TypeSymlink, Linkname: "main"},
			&tar.Header{Name: "app/hard", Typeflag: tar.TypeLink, Linkname: "app/main"},
			&tar.Header{Name: "app/fifo", Typeflag: tar.TypeFifo},
			&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o700}),
		tw(&tar.Header{Name: "../kz-a", Typeflag: tar.TypeReg, Size: 1}),
		tw(&tar.Header{Name: "/kz-a", Typeflag: tar.TypeReg, Size: 1}),
		tw(&tar.Header{Name: "kz-a", Typeflag: tar.TypeSymlink, Linkname: "/"},
			&tar.Header{Name: "kz-a/kz-b", Typeflag: tar.TypeReg, Size: 1}),
		tw(&tar.Header{Name: "up/secret", Typeflag: tar.TypeReg, Size: 1}),
		tw(&tar.Header{Name: "x", Typeflag: tar.TypeLink, Linkname: "../outside/secret"}),
		tw(&tar.Header{Name: "x", Typeflag: tar.TypeLink, Linkname: "../../outside/secret"}),
		tw(&tar.Header{Name: "x", Typeflag: tar.TypeLink, Linkname: "up/secret"}),
		tw(&tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o777},
			&tar.Header{Name: "d", Typeflag: tar.TypeSymlink, Linkname: "../outside/secret"}),
		tw(&tar.Header{Name: "kz-c/", Typeflag: tar.TypeDir}, &tar.Header{Name: "kz-c/dir/", Typeflag: tar.TypeDir},
			&tar.Header{Name: "kz-c", Typeflag: tar.TypeSymlink, Linkname: "../outside"}), // with dest /
		tw(&tar.Header{Name: "shared", Typeflag: tar.TypeReg, Size: 2, Mode: 0o777}),
		tw(&tar.Header{Name: "ign/keep", Typeflag: tar.TypeReg, Size: 1}),
		tw(&tar.Header{Name: "f", Typeflag: tar.TypeReg, Size: 1},
			&tar.Header{Name: "f", Typeflag: tar.TypeDir},
			&tar.Header{Name: "f", Typeflag: tar.TypeReg, Size: 2}),
		tw(&tar.Header{Name: strings.Repeat("d/", 120) + "f", Typeflag: tar.TypeReg, Size: 1}),
		cat(fuzztar.Header("huge", "", tar.TypeReg, 0o644, 1<<40), []byte("short")),
		cat(fuzztar.Pax("GNU.sparse.map", "0,5,1048576,5", "GNU.sparse.numblocks", "2", "GNU.sparse.size", "2097152"),
			fuzztar.Header("sparse", "", tar.TypeReg, 0o644, 10), fuzztar.Pad([]byte("abcdeABCDE")), fuzztar.End()),
	}
}
