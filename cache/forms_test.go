package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/klauspost/compress/zstd"
)

func digestOf(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

// TestUnpackForms: a form is kept only when committed with its own diffID, reads back as a
// zstd stream of what was written, is not made twice, leaves no temporary file either way,
// and RemoveForm drops it with a warning.
func TestUnpackForms(t *testing.T) {
	dir := t.TempDir()
	var warnings []string
	bc := NewBaseCache(dir, BaseCacheWarnings(func(f string, a ...any) { warnings = append(warnings, fmt.Sprintf(f, a...)) }))
	content := bytes.Repeat([]byte("layer tar bytes "), 10000)
	diffID := digestOf(content)

	if _, ok := bc.OpenForm(diffID); ok {
		t.Fatal("an empty cache opened a form")
	}
	w := bc.NewForm(diffID)
	w.Write(content[:100])
	w.Abort()
	w = bc.NewForm(diffID)
	w.Write(content)
	w.Commit(digestOf([]byte("something else")))
	if _, ok := bc.OpenForm(diffID); ok {
		t.Fatal("a form committed with another digest was kept")
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], diffID.String()) {
		t.Fatalf("warnings %q, want one naming %s", warnings, diffID)
	}

	bc = NewBaseCache(dir) // a new process: the failure above is not remembered
	w = bc.NewForm(diffID)
	w.Write(content[:5000])
	w.Write(content[5000:])
	w.Commit(diffID)
	if bc.NewForm(diffID) != nil {
		t.Fatal("NewForm offered to make a form that is kept")
	}
	rc, ok := bc.OpenForm(diffID)
	if !ok {
		t.Fatal("the committed form is not there")
	}
	zr, err := zstd.NewReader(rc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	zr.Close()
	rc.Close()
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("the form reads back %d bytes (%v), want the %d written", len(got), err, len(content))
	}
	if parts, _ := filepath.Glob(filepath.Join(dir, FormsDir, "sha256", "*.part")); len(parts) != 0 {
		t.Fatalf("temporary files left: %v", parts)
	}

	warnings = nil
	bc = NewBaseCache(dir, BaseCacheWarnings(func(f string, a ...any) { warnings = append(warnings, fmt.Sprintf(f, a...)) }))
	bc.RemoveForm(diffID, fmt.Errorf("test damage"))
	if _, ok := bc.OpenForm(diffID); ok {
		t.Fatal("a removed form opens")
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "test damage") {
		t.Fatalf("warnings %q, want one giving the damage", warnings)
	}
	if _, err := os.Stat(filepath.Join(dir, FormsDir)); err != nil {
		t.Fatal(err)
	}
}

// TestFormsOfLayers: layers of Image offer forms by their diffID; layers of Refresh (the
// warmer's --force) neither read nor make them.
func TestFormsOfLayers(t *testing.T) {
	img, err := random.Image(2048, 1)
	if err != nil {
		t.Fatal(err)
	}
	bc := NewBaseCache(t.TempDir())
	ls, _ := bc.Image(img).Layers()
	l := ls[0].(*cachedLayer)
	diffID, _ := l.DiffID()
	rc, _ := l.Uncompressed()
	tarBytes, _ := io.ReadAll(rc)
	rc.Close()
	w := l.NewForm()
	if w == nil {
		t.Fatal("a layer of Image offers no form")
	}
	w.Write(tarBytes)
	w.Commit(diffID)
	if f, ok := l.OpenForm(); !ok {
		t.Fatal("the layer's form is not found by its diffID")
	} else {
		f.Close()
	}
	rs, _ := bc.Refresh(img).Layers()
	r := rs[0].(*cachedLayer)
	if _, ok := r.OpenForm(); ok || r.NewForm() != nil {
		t.Fatal("a layer of Refresh reads or makes forms")
	}
}
