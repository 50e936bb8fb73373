package sparse

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestIsSparse(t *testing.T) {
	for _, c := range []struct {
		hdr  tar.Header
		want bool
	}{
		{tar.Header{Typeflag: tar.TypeReg}, false},
		{tar.Header{Typeflag: tar.TypeGNUSparse}, true},
		{tar.Header{Typeflag: tar.TypeReg, PAXRecords: map[string]string{"GNU.sparse.map": "0,1"}}, true},
		{tar.Header{Typeflag: tar.TypeReg, PAXRecords: map[string]string{"SCHILY.xattr.user.a": "b"}}, false},
	} {
		if got := IsSparse(&c.hdr); got != c.want {
			t.Errorf("IsSparse(%+v) = %v, want %v", c.hdr, got, c.want)
		}
	}
}

// TestCopyKeepsHoles writes 1 MiB of data, 64 MiB of zeros and 1 MiB of data: the content
// reads back the same, and the zeros take no blocks.
func TestCopyKeepsHoles(t *testing.T) {
	data := bytes.Repeat([]byte("kiln"), 1<<18)
	content := bytes.Join([][]byte{data, make([]byte, 64<<20), data, make([]byte, 3000)}, nil)
	p := filepath.Join(t.TempDir(), "f")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := Copy(int(f.Fd()), bytes.NewReader(content), int64(len(content)), make([]byte, 100_000)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, content) {
		t.Fatalf("read back %d bytes that differ from the %d written", len(got), len(content))
	}
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	if used := st.Blocks * 512; used > 8<<20 {
		t.Errorf("the file takes %d bytes on disk: its 64 MiB hole was written", used)
	}
}
