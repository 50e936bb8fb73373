package atomicfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "f")
	if err := Write(p, 0o644, func(w io.Writer) error { _, err := io.WriteString(w, "one"); return err }); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "one" {
		t.Fatalf("read %q, %v", b, err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v", fi.Mode())
	}

	// A failing fill leaves the old file and no temporary file.
	boom := errors.New("boom")
	err := Write(p, 0o644, func(w io.Writer) error { io.WriteString(w, "partial"); return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "one" {
		t.Fatalf("old file changed: %q", b)
	}
	if es, _ := os.ReadDir(filepath.Dir(p)); len(es) != 1 {
		t.Fatalf("left behind: %v", es)
	}
}

func TestWriteWithPattern(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	var tmp string
	err := WriteWith(p, Options{Pattern: "f.*.part", NoSync: true}, func(w io.Writer) error {
		tmp = w.(*os.File).Name()
		_, err := io.WriteString(w, "x")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if base := filepath.Base(tmp); !strings.HasPrefix(base, "f.") || !strings.HasSuffix(base, ".part") {
		t.Fatalf("temporary file %s", base)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want CreateTemp's 0600", fi.Mode())
	}
}

func TestCopySHA256(t *testing.T) {
	var b bytes.Buffer
	n, sum, err := CopySHA256(&b, strings.NewReader("abc"))
	if err != nil || n != 3 || b.String() != "abc" ||
		sum != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("%d %s %v %q", n, sum, err, b.String())
	}
}
