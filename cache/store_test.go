package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/kilnbuild/kiln/registry"
)

func memoryRegistry(t *testing.T, h func(http.Handler) http.Handler) string {
	t.Helper()
	var reg http.Handler = ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	if h != nil {
		reg = h(reg)
	}
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestStoresRoundTrip(t *testing.T) {
	rs, err := NewRegistryStore(memoryRegistry(t, nil)+"/team/app/cache", registry.WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []Store{rs, NewLayoutStore(filepath.Join(t.TempDir(), "oci"))} {
		t.Run(strings.Split(s.String(), ":")[0], func(t *testing.T) { testStore(t, s) })
	}
}

func testStore(t *testing.T, s Store) {
	ctx := context.Background()
	key := NewKey("parent", Text(InputInstruction, "RUN make"))
	if _, _, err := s.Get(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of an empty store: %v, want ErrNotFound", err)
	}
	layer, err := random.Layer(512, "application/vnd.docker.image.rootfs.diff.tar.gzip")
	if err != nil {
		t.Fatal(err)
	}
	lineage := LineageOf("Dockerfile", 0, "busybox", 1)
	created := time.Now().UTC().Truncate(time.Second)
	e := Entry{Key: key, Parent: "parent", CreatedBy: "RUN make # buildkit", Created: created, Lineage: lineage,
		Inputs: []Input{Text(InputInstruction, "RUN make")}}
	if err := s.Put(ctx, layer, e); err != nil {
		t.Fatalf("Put: %v", err)
	}
	got, ge, err := s.Get(ctx, key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	wantD, _ := layer.Digest()
	gotD, _ := got.Digest()
	if gotD != wantD {
		t.Fatalf("layer digest %s, want %s", gotD, wantD)
	}
	rc, err := got.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatalf("reading the cached layer: %v", err)
	}
	rc.Close()
	if ge.CreatedBy != e.CreatedBy || !ge.Created.Equal(created) || ge.Parent != "parent" || ge.Empty ||
		len(ge.Inputs) != 1 || ge.Inputs[0] != e.Inputs[0] {
		t.Fatalf("entry read back %+v, want %+v", ge, e)
	}
	last, err := s.Last(ctx, lineage)
	if err != nil || last.Key != key {
		t.Fatalf("Last(lineage) = %v, %v; want key %s", last.Key, err, key)
	}

	// An empty entry has no layer.
	ekey := NewKey(key, Text(InputInstruction, "RUN true"))
	if err := s.Put(ctx, nil, Entry{Key: ekey, Parent: key, CreatedBy: "RUN true", Created: created, Empty: true}); err != nil {
		t.Fatalf("Put empty: %v", err)
	}
	if l, ee, err := s.Get(ctx, ekey); err != nil || l != nil || !ee.Empty {
		t.Fatalf("Get empty entry: layer %v, empty %v, err %v", l, ee.Empty, err)
	}

	// Lookup: a hit, an expired entry, and a miss explained through the lineage.
	now := created.Add(time.Hour)
	if r := Lookup(ctx, s, key, "parent", e.Inputs, lineage, 2*time.Hour, now); !r.Hit || r.Layer == nil {
		t.Fatalf("Lookup within the ttl: %+v", r)
	}
	if r := Lookup(ctx, s, key, "parent", e.Inputs, lineage, 30*time.Minute, now); r.Hit || !strings.Contains(r.Reason, "expired") {
		t.Fatalf("Lookup past the ttl: %+v", r)
	}
	other := []Input{Text(InputInstruction, "RUN make install")}
	r := Lookup(ctx, s, NewKey("parent", other...), "parent", other, lineage, 0, now)
	if r.Hit || r.Reason != "no entry: instruction changed" {
		t.Fatalf("Lookup of a changed instruction: %+v", r)
	}
}

func TestRegistryStoreFailuresAreErrorsNotMisses(t *testing.T) {
	host := memoryRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				http.Error(w, "read-only", http.StatusForbidden)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	s, err := NewRegistryStore(host+"/cache", registry.WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	layer, _ := random.Layer(64, "application/vnd.docker.image.rootfs.diff.tar.gzip")
	err = s.Put(context.Background(), layer, Entry{Key: NewKey("x"), Created: time.Now()})
	if err == nil || !strings.Contains(err.Error(), host) {
		t.Fatalf("Put to a read-only registry: %v; want an error naming %s", err, host)
	}
	if _, err := NewRegistryStore("UPPER/Case"); err == nil {
		t.Error("an invalid repository was accepted")
	}
}

func TestBaseCacheKeepsVerifiedLayers(t *testing.T) {
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bc := NewBaseCache(dir)
	layers, err := bc.Image(img).Layers()
	if err != nil {
		t.Fatal(err)
	}
	d0, _ := layers[0].Digest()
	d1, _ := layers[1].Digest()
	// A partial read stores nothing; a full read stores the blob.
	rc, _ := layers[0].Compressed()
	buf := make([]byte, 10)
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if bc.Has(d0) {
		t.Fatal("a partially read layer entered the cache")
	}
	if p := layers[0].(interface{ Path() string }).Path(); p != "" {
		t.Fatalf("Path() = %q before the layer is cached, want \"\"", p)
	}
	for _, l := range layers {
		rc, _ := l.Compressed()
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
	if !bc.Has(d0) || !bc.Has(d1) {
		t.Fatal("fully read layers are not in the cache")
	}
	if p := layers[0].(interface{ Path() string }).Path(); p != filepath.Join(dir, "blobs", "sha256", d0.Hex) {
		t.Fatalf("Path() = %q once cached, want the blob's file", p)
	}
	// From now on the layer is served from disk: prove it with a source that fails.
	again, _ := NewBaseCache(dir).Image(failingImage{img}).Layers()
	rc, err = again[0].Compressed()
	if err != nil {
		t.Fatalf("cached layer not read from the cache dir: %v", err)
	}
	if n, err := io.Copy(io.Discard, rc); err != nil || n == 0 {
		t.Fatalf("reading the cached layer: %d bytes, %v", n, err)
	}
	rc.Close()
	// A damaged blob is never served: it is removed, with a warning, and read from the source.
	blob := filepath.Join(dir, "blobs", "sha256", d0.Hex)
	if err := os.WriteFile(blob, []byte("damaged on disk"), 0o644); err != nil {
		t.Fatal(err)
	}
	var warnings []string
	warn := BaseCacheWarnings(func(f string, a ...any) { warnings = append(warnings, fmt.Sprintf(f, a...)) })
	again, _ = NewBaseCache(dir, warn).Image(img).Layers()
	if p := again[0].(interface{ Path() string }).Path(); p != "" {
		t.Fatalf("Path() = %q for a damaged blob, want \"\"", p)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], blob) || !strings.Contains(warnings[0], "damaged") {
		t.Fatalf("warnings %q, want one naming %s as damaged", warnings, blob)
	}
	rc, _ = again[0].Compressed()
	got, _ := io.ReadAll(rc)
	rc.Close()
	if want, _ := layers[0].Compressed(); true {
		b, _ := io.ReadAll(want)
		want.Close()
		if !bytes.Equal(got, b) {
			t.Fatalf("read %d bytes for the damaged blob, want the source's %d", len(got), len(b))
		}
	}
	if !bc.Has(d0) {
		t.Fatal("the re-read layer was not cached again")
	}
	if parts, _ := filepath.Glob(filepath.Join(dir, "blobs", "sha256", "*.part")); len(parts) != 0 {
		t.Fatalf("temporary files left behind: %v", parts)
	}
	var _ v1.Layer = again[1]
}

// failingImage is an image whose layers cannot be downloaded.
type failingImage struct{ v1.Image }

func (i failingImage) Layers() ([]v1.Layer, error) {
	ls, err := i.Image.Layers()
	out := make([]v1.Layer, len(ls))
	for n, l := range ls {
		out[n] = failingLayer{l}
	}
	return out, err
}

type failingLayer struct{ v1.Layer }

func (failingLayer) Compressed() (io.ReadCloser, error) {
	return nil, errors.New("the source is unreachable")
}
