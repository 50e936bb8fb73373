package snapshot

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func sha256Of(t *testing.T, r io.Reader) string {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("sha256:%x", h.Sum(nil))
}

func TestLayerDigestsMatchContent(t *testing.T) {
	for _, tc := range []struct {
		comp Compression
		mt   types.MediaType
	}{
		{Compression{}, types.DockerLayer},
		{Compression{Algorithm: "gzip", Level: 1}, types.DockerLayer},
		{Compression{Algorithm: "zstd"}, types.OCILayerZStd},
		{Compression{Algorithm: "zstd", Level: 9}, types.OCILayerZStd},
	} {
		t.Run(fmt.Sprintf("%s-%d", tc.comp.Algorithm, tc.comp.Level), func(t *testing.T) {
			root := t.TempDir()
			f := fsOps{t: t, root: root}
			for i := 0; i < 50; i++ {
				f.write(fmt.Sprintf("/d%d/f%d", i%5, i), fmt.Sprintf("content %d %s", i, make([]byte, i*100)), 0o644)
			}
			layerDir := t.TempDir()
			l, err := New(root, WithCompression(tc.comp), WithLayerDir(layerDir)).Take(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var _ v1.Layer = l
			if mt, _ := l.MediaType(); mt != tc.mt {
				t.Errorf("media type %s, want %s", mt, tc.mt)
			}
			file, err := os.Open(l.Path())
			if err != nil {
				t.Fatal(err)
			}
			defer file.Close()
			fi, _ := file.Stat()
			if size, _ := l.Size(); size != fi.Size() {
				t.Errorf("Size %d, file has %d bytes", size, fi.Size())
			}
			if d, _ := l.Digest(); d.String() != sha256Of(t, file) {
				t.Errorf("Digest %s differs from the file's sha256", d)
			}
			rc, err := l.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			if d, _ := l.Digest(); d.String() != sha256Of(t, rc) {
				t.Errorf("Digest %s differs from Compressed()'s sha256", d)
			}
			rc.Close()
			u, err := l.Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			if d, _ := l.DiffID(); d.String() != sha256Of(t, u) {
				t.Errorf("DiffID %s differs from the decompressed stream's sha256", d)
			}
			u.Close()
			if got := len(layerEntries(t, l)); got != 55 {
				t.Errorf("layer has %d entries, want 55 (5 dirs + 50 files)", got)
			}
			if err := l.Remove(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestUnknownCompression(t *testing.T) {
	root := t.TempDir()
	fsOps{t: t, root: root}.write("/f", "x", 0o644)
	_, err := New(root, WithCompression(Compression{Algorithm: "lz4"}), WithLayerDir(t.TempDir())).Take(context.Background())
	if err == nil {
		t.Fatal("Take with compression lz4 succeeded")
	}
}

func TestReproducibleDigest(t *testing.T) {
	build := func(comp Compression) v1.Hash {
		root := t.TempDir()
		f := fsOps{t: t, root: root}
		f.write("/app/main", "binary", 0o755)
		f.write("/app/conf/a.yaml", "a: 1", 0o644)
		f.must(os.Symlink("main", f.host("/app/run")))
		l, err := New(root, WithReproducible(true), WithCompression(comp), WithLayerDir(t.TempDir())).Take(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range readTarLayer(t, l) {
			if e.hdr.ModTime.Unix() != 0 {
				t.Errorf("entry %s has mtime %v with reproducible", e.hdr.Name, e.hdr.ModTime)
			}
		}
		d, _ := l.Digest()
		return d
	}
	for _, comp := range []Compression{{}, {Algorithm: "zstd"}} {
		first := build(comp)
		time.Sleep(20 * time.Millisecond) // different mtimes on the second tree
		if second := build(comp); first != second {
			t.Errorf("%q: reproducible digests differ: %s vs %s", comp.Algorithm, first, second)
		}
	}
}

func readTarLayer(t *testing.T, l *Layer) []tarEntry {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	return readTar(t, rc)
}
