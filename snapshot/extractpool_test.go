package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/decompress"
	"github.com/kilnbuild/kiln/internal/dirspread"
)

// TestExtractWorkersMatchOneGoroutine unpacks the same layers on the reading goroutine alone
// and with writers, and compares the trees: a base of Debian's shape, then a layer that
// deletes, empties, replaces and links what the base made (and the real Debian base when
// testenv has cached it). Each is unpacked again into a root whose top-level directories are
// spread (dirspread): the trees must not differ, and no temporary name may be left.
func TestExtractWorkersMatchOneGoroutine(t *testing.T) {
	requireRoot(t)
	var base bytes.Buffer
	debianLikeTar(t, &base, 60)
	layers := [][]byte{base.Bytes(), overLayer(t).Bytes()}
	if f, err := os.Open(debianTarGz); err == nil && !testing.Short() {
		r, done, err := decompress.Reader(f)
		if err != nil {
			t.Fatal(err)
		}
		deb, err := io.ReadAll(r)
		done()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		layers = append([][]byte{deb}, layers...)
	}
	start := time.Now()
	var trees [][]string
	for _, run := range []struct {
		workers int
		spread  bool
	}{{1, false}, {3, false}, {1, true}, {3, true}} {
		root := t.TempDir()
		if run.spread {
			defer dirspread.Children(root)()
		}
		for i, l := range layers {
			if err := Extract(context.Background(), root, bytes.NewReader(l), WithExtractWorkers(run.workers)); err != nil {
				t.Fatalf("workers=%d spread=%v, layer %d: %v", run.workers, run.spread, i, err)
			}
		}
		trees = append(trees, timesSince(listing(t, root), start))
		if run.spread {
			noFlagsLeft(t, root)
		}
	}
	for i := 1; i < len(trees); i++ {
		if !slices.Equal(trees[0], trees[i]) {
			t.Errorf("the trees differ:\n%s", strings.Join(diffLines(trees[0], trees[i]), "\n"))
		}
	}
	if len(trees[0]) < 400 {
		t.Fatalf("only %d entries were unpacked", len(trees[0]))
	}
}

// overLayer changes what debianLikeTar made: a whiteout of a directory, an opaque directory
// refilled, a file replaced by a directory and a directory by a symlink, a new file through a
// symlink, hardlinks, and a file written twice.
func overLayer(t *testing.T) *bytes.Buffer {
	mt := time.Unix(1710000000, 0)
	hdrs := []*tar.Header{
		{Name: "usr/d00/.wh.s01", Typeflag: tar.TypeReg},
		{Name: "usr/d00/s02/", Typeflag: tar.TypeDir, Mode: 0o750},
		{Name: "usr/d00/s02/.wh..wh..opq", Typeflag: tar.TypeReg},
		{Name: "usr/d00/s02/new", Typeflag: tar.TypeReg, Mode: 0o600, Size: 3},
		{Name: "usr/d00/s03/f0/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "usr/d00/s03/f0/inner", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3},
		{Name: "usr/d00/s04", Typeflag: tar.TypeSymlink, Linkname: "s05"},
		{Name: "usr/d00/s04/through", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3},
		{Name: "usr/d01/hard", Typeflag: tar.TypeLink, Linkname: "usr/d01/s01/f1"},
		{Name: "usr/d01/twice", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3},
		{Name: "usr/d01/twice", Typeflag: tar.TypeReg, Mode: 0o640, Size: 3},
		{Name: "usr/d01/twice-hard", Typeflag: tar.TypeLink, Linkname: "usr/d01/twice"},
		{Name: "usr/d01/s09/.wh.f2", Typeflag: tar.TypeReg},
		{Name: "usr/d01/s09/l0", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3},
	}
	content := map[string]string{}
	for _, h := range hdrs {
		h.ModTime = mt
		if h.Size > 0 {
			content[h.Name] = h.Name[len(h.Name)-3:]
		}
	}
	return buildTar(t, hdrs, content)
}

// diffLines lists the lines only a or only b holds.
func diffLines(a, b []string) []string {
	var out []string
	for _, l := range a {
		if !slices.Contains(b, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range b {
		if !slices.Contains(a, l) {
			out = append(out, "+ "+l)
		}
	}
	return out
}

// noFlagsLeft fails the test for a directory under root (root aside) that still has the
// placement flag dirspread.Mkdir gave it: Extract clears them all.
func noFlagsLeft(t *testing.T, root string) {
	t.Helper()
	if !dirspread.Set(root) {
		t.Logf("%s has no top-directory flag: this file system has none, nothing was spread", root)
		return
	}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && p != root && dirspread.Set(p) {
			t.Errorf("%s keeps the placement flag after extraction", p)
		}
		return nil
	})
}
