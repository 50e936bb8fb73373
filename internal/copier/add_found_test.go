package copier

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/fuzztar"
)

// Found by FuzzAddArchive: the tar reader gives a sparse file's holes as zeros and ADD wrote
// them, so an archive of a few hundred bytes claiming a sparse file of any size filled the
// disk; and old GNU sparse entries ('S') were skipped without a word. Holes stay holes now,
// and 'S' entries are files.
func TestAddSparseArchiveKeepsHoles(t *testing.T) {
	requireRootFuzz(t)
	const logical = 64 << 20
	oldGNU := fuzztar.Header("old", "", 'S', 0o644, 5)
	copy(oldGNU[345:], make([]byte, 155))
	copy(oldGNU[257:265], "ustar  \x00")
	copy(oldGNU[386:398], "00000000000\x00")
	copy(oldGNU[398:410], "00000000005\x00")
	copy(oldGNU[483:495], "00400000000\x00") // 64 MiB
	fuzztar.SetChecksum(oldGNU)
	archive := bytes.Join([][]byte{
		fuzztar.Pax("GNU.sparse.map", "0,5,1048576,5", "GNU.sparse.numblocks", "2", "GNU.sparse.size", "67108864"),
		fuzztar.Header("pax", "", '0', 0o644, 10), fuzztar.Pad([]byte("abcdeABCDE")),
		oldGNU, fuzztar.Pad([]byte("abcde")),
		fuzztar.End(),
	}, nil)
	ctxDir, root := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(ctxDir, "a.tar"), archive, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Add(context.Background(), Request{SrcRoot: ctxDir, Sources: []string{"a.tar"}, Root: root,
		Dest: "/x/", WorkDir: "/", UID: -1, GID: -1}, AddOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, second := range map[string]string{"pax": "ABCDE", "old": ""} {
		p := filepath.Join(root, "x", name)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]byte, logical)
		copy(want, "abcde")
		copy(want[1<<20:], second)
		if !bytes.Equal(data, want) {
			t.Errorf("%s: %d bytes, not what the sparse map says", name, len(data))
		}
		fi, _ := os.Stat(p)
		if used := fi.Sys().(*syscall.Stat_t).Blocks * 512; used > 1<<20 {
			t.Errorf("%s: %d bytes on disk for 10 bytes of data", name, used)
		}
	}
}

// Found while fuzzing ADD: directory times are set after all entries, by path; an archive
// that replaced a directory's parent by a symlink to a host directory made ADD set the times
// of that host directory's child, outside the root.
func TestAddArchiveDirTimesStayInRoot(t *testing.T) {
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	if err := os.Mkdir(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(victim, old, old); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "a/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "a/victim/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Name: "a", Typeflag: tar.TypeSymlink, Linkname: outside},
	} {
		if err := w.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	ctxDir, root := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(ctxDir, "a.tar"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Add(context.Background(), Request{SrcRoot: ctxDir, Sources: []string{"a.tar"}, Root: root,
		Dest: "/", WorkDir: "/", UID: -1, GID: -1}, AddOptions{}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(victim); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("a directory outside the root: %v, %v; its times must not change", fi.ModTime(), err)
	}
}
