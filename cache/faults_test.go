package cache

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// A hit whose layer no longer matches its digest, or whose blob is gone, is a miss with a
// warning; a hit on an intact entry is not.
func TestLookupRefusesDamagedEntries(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "oci")
	s := NewLayoutStore(dir)
	key := NewKey("parent", Text(InputInstruction, "RUN make"))
	layer, err := random.Layer(4096, "application/vnd.docker.image.rootfs.diff.tar.gzip")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, layer, Entry{Key: key, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if r := Lookup(ctx, s, key, "parent", nil, "", 0, time.Now()); !r.Hit || r.Warning != "" {
		t.Fatalf("intact entry: %+v", r)
	}
	d, _ := layer.Digest()
	blob := filepath.Join(dir, "blobs", "sha256", d.Hex)
	b, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(blob, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r := Lookup(ctx, s, key, "parent", nil, "", 0, time.Now())
	if r.Hit || !strings.Contains(r.Warning, "damaged") || !strings.Contains(r.Warning, d.String()) {
		t.Fatalf("damaged layer: %+v; want a miss with a warning naming %s", r, d)
	}
	if err := os.Remove(blob); err != nil {
		t.Fatal(err)
	}
	if r := Lookup(ctx, s, key, "parent", nil, "", 0, time.Now()); r.Hit || r.Warning == "" {
		t.Fatalf("missing blob: %+v; want a miss with a warning", r)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), []byte("{torn"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := Lookup(ctx, s, key, "parent", nil, "", 0, time.Now()); r.Hit || !strings.Contains(r.Warning, "index.json") {
		t.Fatalf("torn index: %+v; want a miss with a warning naming index.json", r)
	}
	// The next write starts a new index and keeps the damaged one aside.
	if err := s.Put(ctx, layer, Entry{Key: key, Created: time.Now()}); err != nil {
		t.Fatalf("Put over a damaged index: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "index.json.damaged")); err != nil {
		t.Errorf("the damaged index was not kept aside: %v", err)
	}
	if r := Lookup(ctx, s, key, "parent", nil, "", 0, time.Now()); !r.Hit {
		t.Fatalf("after the rewrite: %+v", r)
	}
	if _, err := layout.FromPath(dir); err != nil {
		t.Fatal(err)
	}
}

// Build arg values are kept in an entry only as a digest: anyone who can read the cache would
// otherwise read the tokens given as --build-arg. Explanations still name a change of args.
func TestEntryKeepsNoBuildArgValues(t *testing.T) {
	ctx := context.Background()
	s := NewLayoutStore(filepath.Join(t.TempDir(), "oci"))
	args := Map(InputArgs, map[string]string{"TOKEN": "kiln-secret-value"})
	inputs := []Input{Text(InputInstruction, "RUN make"), args}
	key := NewKey("parent", inputs...)
	if err := s.Put(ctx, nil, Entry{Key: key, Parent: "parent", Empty: true, Created: time.Now(), Lineage: "pos-1", Inputs: inputs}); err != nil {
		t.Fatal(err)
	}
	_, e, err := s.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(e)
	if strings.Contains(string(b), "kiln-secret-value") {
		t.Fatalf("the entry stores the build arg's value: %s", b)
	}
	changed := []Input{Text(InputInstruction, "RUN make"), Map(InputArgs, map[string]string{"TOKEN": "another"})}
	if got := Explain(e, "parent", changed); got != "args changed" {
		t.Errorf("Explain = %q, want \"args changed\"", got)
	}
	if got := Explain(e, "parent", inputs); got != "inputs are equal to the previous entry's" {
		t.Errorf("Explain with the same args = %q", got)
	}
}
