package cache

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// TestBaseCacheStoresImages stores an image's manifest, config, layers and resolution, then
// reads it back from the cache alone, checks that an incomplete or damaged entry is never
// served, and that records are per reference and platform.
func TestBaseCacheStoresImages(t *testing.T) {
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	ref, _ := name.ParseReference("registry.example:5000/app/base:1")
	dir := t.TempDir()
	var warnings []string
	bc := NewBaseCache(dir, BaseCacheWarnings(func(f string, a ...any) { warnings = append(warnings, fmt.Sprintf(f, a...)) }))

	if _, ok := bc.Resolved(ref, "linux/amd64"); ok {
		t.Fatal("an empty cache resolved a reference")
	}
	if err := bc.StoreImage(ref, "linux/amd64", img); err != nil {
		t.Fatal(err)
	}
	res, ok := bc.Resolved(ref, "linux/amd64")
	if !ok || res.Digest != d || res.Ref != ref.Name() || res.Time.IsZero() {
		t.Fatalf("Resolved = %+v, %v; want %s", res, ok, d)
	}
	if _, ok := bc.Resolved(ref, "linux/arm64"); ok {
		t.Error("a resolution for linux/amd64 answered for linux/arm64")
	}
	other, _ := name.ParseReference("registry.example:5000/app/base:2")
	if _, ok := bc.Resolved(other, "linux/amd64"); ok {
		t.Error("a resolution of :1 answered for :2")
	}
	if bc.HasImage(d) {
		t.Fatal("HasImage is true before the layers are stored")
	}

	// Without its layers the image loads; reading a missing layer names it.
	loaded, err := bc.LoadImage(d)
	if err != nil {
		t.Fatal(err)
	}
	if ld, _ := loaded.Digest(); ld != d {
		t.Fatalf("loaded image digest %s, want %s", ld, d)
	}
	ls, _ := loaded.Layers()
	l0, _ := ls[0].Digest()
	if _, err := ls[0].Compressed(); !errors.Is(err, errLayerNotCached) || !strings.Contains(err.Error(), l0.String()) {
		t.Fatalf("reading an uncached layer: %v; want an error naming %s", err, l0)
	}

	// Read the layers through the cache: now the image is complete and reads offline.
	layers, _ := bc.Image(img).Layers()
	for _, l := range layers {
		rc, _ := l.Compressed()
		io.Copy(io.Discard, rc)
		rc.Close()
	}
	if !bc.HasImage(d) {
		t.Fatal("HasImage is false after storing every layer")
	}
	loaded, _ = NewBaseCache(dir).LoadImage(d)
	ls, _ = loaded.Layers()
	for _, l := range ls {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("cached layer: %v", err)
		}
		rc.Close()
	}
	cfg, err := loaded.ConfigFile()
	if err != nil || len(cfg.RootFS.DiffIDs) != 2 {
		t.Fatalf("cached config: %v, %v", cfg, err)
	}

	// A damaged manifest is removed, with a warning, and the image is no longer there.
	m, _ := img.Manifest()
	if err := os.WriteFile(filepath.Join(dir, "manifests", "sha256", d.Hex), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	fresh := NewBaseCache(dir, BaseCacheWarnings(func(f string, a ...any) { warnings = append(warnings, fmt.Sprintf(f, a...)) }))
	if fresh.HasImage(d) {
		t.Fatal("HasImage is true with a damaged manifest")
	}
	if _, err := fresh.LoadImage(d); err == nil {
		t.Fatal("a damaged manifest was loaded")
	}
	if len(warnings) == 0 || !strings.Contains(warnings[len(warnings)-1], "manifest") {
		t.Errorf("no warning about the damaged manifest: %q", warnings)
	}
	// StoreImage repairs it; a damaged config makes the image unusable the same way.
	if err := fresh.StoreImage(ref, "linux/amd64", img); err != nil || !fresh.HasImage(d) {
		t.Fatalf("StoreImage after damage: %v, complete %v", err, fresh.HasImage(d))
	}
	os.WriteFile(filepath.Join(dir, "manifests", "sha256", m.Config.Digest.Hex), []byte("x"), 0o644)
	if _, err := NewBaseCache(dir).LoadImage(d); err == nil {
		t.Fatal("an image with a damaged config was loaded")
	}
	// No temporary file is left behind.
	parts, _ := filepath.Glob(filepath.Join(dir, "*", "*.part"))
	more, _ := filepath.Glob(filepath.Join(dir, "*", "sha256", "*.part"))
	if blobs, _ := filepath.Glob(filepath.Join(dir, "blobs", "sha256", "*")); len(blobs) != 2 {
		t.Errorf("<dir>/blobs holds %v, want the 2 layers only", blobs)
	}
	if len(parts)+len(more) > 0 {
		t.Errorf("temporary files left: %v %v", parts, more)
	}
}

// TestBaseCacheRefreshRereads checks that Refresh reads layers from the source even when they
// are cached, and leaves a verified copy.
func TestBaseCacheRefreshRereads(t *testing.T) {
	img, _ := random.Image(512, 1)
	dir := t.TempDir()
	bc := NewBaseCache(dir)
	ls, _ := bc.Image(img).Layers()
	rc, _ := ls[0].Compressed()
	io.Copy(io.Discard, rc)
	rc.Close()
	ls, _ = bc.Refresh(failingImage{img}).Layers()
	if _, err := ls[0].Compressed(); err == nil {
		t.Fatal("Refresh served a cached layer instead of reading the source")
	}
	ls, _ = bc.Refresh(img).Layers()
	rc, _ = ls[0].Compressed()
	io.Copy(io.Discard, rc)
	rc.Close()
	d, _ := ls[0].Digest()
	if !bc.Has(d) || ls[0].(interface{ Path() string }).Path() != "" {
		t.Fatalf("after a refresh: cached %v, Path %q (want cached, and no in-place read)", bc.Has(d), ls[0].(interface{ Path() string }).Path())
	}
}
