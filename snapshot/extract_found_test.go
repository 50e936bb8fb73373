package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/fuzztar"
)

// Found by FuzzExtractEntries (a directory, then a symlink to itself of the same name: "too
// many levels of symbolic links"): directory modes were set at the end by path, with chmod,
// which follows symlinks; a layer whose directory is replaced by a symlink to a host path
// (absolute, so meant inside the root) made Extract chmod that host file, e.g. 0777.
func TestExtractDirReplacedBySymlinkKeepsHostModes(t *testing.T) {
	requireRoot(t)
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	err := extractTar(t, root, []*tar.Header{
		{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o777},
		{Name: "d", Typeflag: tar.TypeSymlink, Linkname: secret},
		{Name: "loop/", Typeflag: tar.TypeDir, Mode: 0o444},
		{Name: "loop", Typeflag: tar.TypeSymlink, Linkname: "loop"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fi := mustStat(t, secret); fi.Mode().Perm() != 0o600 {
		t.Errorf("a file outside the root got mode %v", fi.Mode())
	}
	if target, err := os.Readlink(filepath.Join(root, "d")); err != nil || target != secret {
		t.Errorf("d: %q, %v; want the symlink", target, err)
	}
}

// Found by FuzzExtract: the tar reader gives a sparse file's holes as zeros, and Extract wrote
// them, so a layer of a few hundred bytes claiming a sparse file of any size filled the disk.
// Holes now stay holes; and old GNU sparse entries ('S'), which Extract used to drop without
// a word, are extracted like the pax ones.
func TestExtractSparseKeepsHoles(t *testing.T) {
	requireRoot(t)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	const logical = 64 << 20
	for name, stream := range map[string][]byte{
		"pax 0.1": cat(fuzztar.Pax("GNU.sparse.map", "0,5,1048576,5", "GNU.sparse.numblocks", "2",
			"GNU.sparse.size", "67108864"),
			fuzztar.Header("f", "", '0', 0o640, 10), fuzztar.Pad([]byte("abcdeABCDE")), fuzztar.End()),
		"pax 1.0": cat(fuzztar.Pax("GNU.sparse.major", "1", "GNU.sparse.minor", "0", "GNU.sparse.name", "f",
			"GNU.sparse.realsize", "67108864"),
			fuzztar.Header("GNUSparseFile.0/f", "", '0', 0o640, 512+10),
			fuzztar.Pad([]byte("2\n0\n5\n1048576\n5\n")), fuzztar.Pad([]byte("abcdeABCDE")), fuzztar.End()),
		"old GNU": oldGNUSparseAt(logical),
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			if err := Extract(context.Background(), root, bytes.NewReader(stream)); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(root, "f")
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() != logical {
				t.Errorf("size %d, want %d", fi.Size(), logical)
			}
			if used := fi.Sys().(*syscall.Stat_t).Blocks * 512; used > 1<<20 {
				t.Errorf("%d bytes on disk for 10 bytes of data", used)
			}
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]byte, logical)
			copy(want, "abcde")
			if name != "old GNU" {
				copy(want[1<<20:], "ABCDE")
			}
			if !bytes.Equal(data, want) {
				t.Error("content differs from the sparse map's")
			}
		})
	}
}

// oldGNUSparseAt is an old GNU sparse entry ('S') named f: 5 bytes at offset 0 of a file of
// size bytes.
func oldGNUSparseAt(size int64) []byte {
	h := fuzztar.Header("f", "", 'S', 0o640, 5)
	copy(h[345:], make([]byte, 155))
	copy(h[257:265], "ustar  \x00")
	copy(h[386:398], "00000000000\x00")
	copy(h[398:410], "00000000005\x00")
	copy(h[483:495], []byte(padOctal(size)))
	fuzztar.SetChecksum(h)
	return bytes.Join([][]byte{h, fuzztar.Pad([]byte("abcde")), fuzztar.End()}, nil)
}

func padOctal(n int64) string {
	s := []byte("00000000000\x00")
	for i := 10; i >= 0 && n > 0; i-- {
		s[i] = byte('0' + n%8)
		n /= 8
	}
	return string(s)
}

// A sparse file's holes cost no disk but still take time to read (about 30 GB/s), so a layer
// claiming a huge one must stop when the build is cancelled, not at the end of the file.
func TestExtractStopsInsideAFileWhenCancelled(t *testing.T) {
	requireRoot(t)
	stream := bytes.Join([][]byte{
		fuzztar.Pax("GNU.sparse.map", "0,5", "GNU.sparse.numblocks", "1", "GNU.sparse.size", "1099511627776"), // 1 TiB
		fuzztar.Header("f", "", '0', 0o640, 5), fuzztar.Pad([]byte("abcde")), fuzztar.End(),
	}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := Extract(ctx, t.TempDir(), bytes.NewReader(stream))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("after %v: %v, want the context's error soon after 100ms", time.Since(start), err)
	}
}
