package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/kilnbuild/kiln/registry"
)

const gzipLayer = "application/vnd.docker.image.rootfs.diff.tar.gzip"

func TestDirStoreRoundTrip(t *testing.T) {
	s := NewDirStore(filepath.Join(t.TempDir(), "layercache"))
	testStore(t, s)
	_, e, err := s.Get(context.Background(), NewKey("parent", Text(InputInstruction, "RUN make")))
	if err != nil || e.Source != SourceLocal {
		t.Fatalf("Get: source %q, err %v; want %q", e.Source, err, SourceLocal)
	}
}

func randomLayer(t *testing.T, size int64) v1.Layer {
	t.Helper()
	l, err := random.Layer(size, gzipLayer)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// breakingLayer's blob breaks off after some bytes, as a full disk or a killed writer would.
type breakingLayer struct{ v1.Layer }

func (f breakingLayer) Compressed() (io.ReadCloser, error) {
	rc, err := f.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(io.LimitReader(rc, 100), errReader{}), rc}, nil
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("device full") }

// A write that fails half way, and the temporary files a killed writer leaves, are never seen
// by a reader; Prune removes the leftovers once they are old.
func TestDirStoreTornWritesInvisible(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := NewDirStore(dir)
	key := NewKey("p", Text(InputInstruction, "RUN a"))
	layer := randomLayer(t, 4096)
	if err := s.Put(ctx, breakingLayer{layer}, Entry{Key: key, Created: time.Now()}); err == nil || !strings.Contains(err.Error(), "device full") {
		t.Fatalf("Put of a breaking layer: %v, want the read error", err)
	}
	if _, _, err := s.Get(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after a torn write: %v, want ErrNotFound", err)
	}
	if left := walkFiles(t, dir); len(left) != 0 {
		t.Fatalf("a failed write left %v", left)
	}
	// A killed writer's files: a partial blob and a partial entry under temporary names.
	d, _ := layer.Digest()
	for _, p := range []string{filepath.Join(dir, "blobs", "sha256", tmpPrefix+d.Hex+"-1"),
		filepath.Join(dir, "entries", tmpPrefix+string(key)+".json-1")} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(`{"key":"`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Get(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get with a killed writer's files: %v, want ErrNotFound", err)
	}
	if r := Lookup(ctx, s, key, "p", nil, "", 0, time.Now()); r.Hit || r.Warning != "" {
		t.Fatalf("Lookup with a killed writer's files: %+v, want a plain miss", r)
	}
	if _, err := s.Prune(ctx, PruneOptions{Now: time.Now().Add(2 * tempGrace)}); err != nil {
		t.Fatal(err)
	}
	if left := walkFiles(t, filepath.Join(dir, "blobs")); len(left) != 0 {
		t.Fatalf("Prune left the killed writer's blob: %v", left)
	}
	if err := s.Put(ctx, layer, Entry{Key: key, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if r := Lookup(ctx, s, key, "p", nil, "", 0, time.Now()); !r.Hit {
		t.Fatalf("Lookup after a whole write: %+v", r)
	}
}

func walkFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			out = append(out, strings.TrimPrefix(p, dir))
		}
		return nil
	})
	return out
}

// Two stores on one directory (two pods on one volume) write the same entries and entries
// sharing a blob at once, while readers look them up: every hit is whole and verified, and
// nothing is left half written.
func TestDirStoreConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	stores := []*DirStore{NewDirStore(dir), NewDirStore(dir)}
	layers := []v1.Layer{randomLayer(t, 256<<10), randomLayer(t, 64<<10)}
	keys := make([]Key, 6)
	for i := range keys {
		keys[i] = NewKey("p", Text(InputInstruction, fmt.Sprintf("RUN step %d", i)))
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	var hits, misses int64
	var mu sync.Mutex
	for r := 0; r < 2; r++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				res := Lookup(ctx, stores[n%2], keys[n%len(keys)], "p", nil, "", 0, time.Now())
				mu.Lock()
				if res.Hit {
					hits++
				} else {
					misses++
				}
				mu.Unlock()
				if res.Warning != "" {
					t.Errorf("a reader saw a broken entry: %s", res.Warning)
					return
				}
			}
		}()
	}
	var writers sync.WaitGroup
	for w := 0; w < 4; w++ {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i, k := range keys {
				e := Entry{Key: k, Created: time.Now(), Lineage: "pos-1"}
				if err := stores[w%2].Put(ctx, layers[i%2], e); err != nil {
					t.Errorf("writer %d: %v", w, err)
				}
			}
		}()
	}
	writers.Wait()
	close(stop)
	readers.Wait()
	for i, k := range keys {
		r := Lookup(ctx, stores[0], k, "p", nil, "", 0, time.Now())
		want, _ := layers[i%2].Digest()
		if !r.Hit {
			t.Fatalf("entry %d after the writers: %+v", i, r)
		}
		if got, _ := r.Layer.Digest(); got != want {
			t.Fatalf("entry %d: layer %s, want %s", i, got, want)
		}
	}
	for _, f := range walkFiles(t, dir) {
		if strings.Contains(f, tmpPrefix) {
			t.Errorf("temporary file left: %s", f)
		}
	}
	t.Logf("readers: %d hits, %d misses while writing", hits, misses)
}

// Prune removes the least recently used entries (a hit counts as a use) until the store fits,
// with the blobs no remaining entry names; a blob two entries share stays while one remains.
func TestDirStorePruneLRU(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := NewDirStore(dir)
	base := t.TempDir() // stands for <cache-dir>/blobs, counted but not pruned
	if err := os.WriteFile(filepath.Join(base, "b"), make([]byte, 10000), 0o644); err != nil {
		t.Fatal(err)
	}
	names := []string{"a", "b", "c", "d"}
	layers := map[string]v1.Layer{"a": randomLayer(t, 50000), "b": randomLayer(t, 50000), "c": randomLayer(t, 50000)}
	layers["d"] = layers["c"] // d shares c's blob
	keys := map[string]Key{}
	old := time.Now().Add(-time.Hour)
	for i, n := range names {
		keys[n] = NewKey("p", Text(InputInstruction, "RUN "+n))
		if err := s.Put(ctx, layers[n], Entry{Key: keys[n], Created: time.Now(), Lineage: LineageOf("Dockerfile", 0, "", i)}); err != nil {
			t.Fatal(err)
		}
		// Used in the order a, b, c, d, an hour ago.
		at := old.Add(time.Duration(i) * time.Minute)
		if err := os.Chtimes(s.entryPath(keys[n]), at, at); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Get(ctx, keys["a"]); err != nil { // a is now the most recently used
		t.Fatal(err)
	}
	full, err := s.Prune(ctx, PruneOptions{AlsoCount: []string{base}})
	if err != nil || full.Removed != 0 || full.Entries != 4 {
		t.Fatalf("Prune without a bound: %+v, %v", full, err)
	}
	blobSize := func(n string) int64 { sz, _ := layers[n].Size(); return sz }
	// Room for the base and two blobs: b goes first, then c (its blob stays for d)... a stays.
	bound := full.Size - blobSize("b") - 1
	res, err := s.Prune(ctx, PruneOptions{MaxSize: bound, AlsoCount: []string{base}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Size > bound || res.Other != 10000 || res.OverBoundLeft {
		t.Fatalf("Prune: %+v; want at most %d bytes, 10000 of them the base", res, bound)
	}
	present := func(n string) bool { _, _, err := s.Get(ctx, keys[n]); return err == nil }
	if present("b") || !present("a") || !present("d") {
		t.Fatalf("after Prune: a %v, b %v, c %v, d %v; want b (least recently used) gone, a and d kept",
			present("a"), present("b"), present("c"), present("d"))
	}
	db, _ := layers["b"].Digest()
	if _, err := os.Stat(s.blobPath(db)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("b's blob is still there: %v", err)
	}
	if _, err := s.Last(ctx, LineageOf("Dockerfile", 0, "", 1)); !errors.Is(err, ErrNotFound) {
		t.Errorf("b's lineage pointer is still there: %v", err)
	}
	// A bound the base images alone exceed: every entry goes and the result says so.
	res, err = s.Prune(ctx, PruneOptions{MaxSize: 5000, AlsoCount: []string{base}})
	if err != nil || res.Entries != 0 || !res.OverBoundLeft {
		t.Fatalf("Prune below the base's size: %+v, %v", res, err)
	}
	if left := walkFiles(t, filepath.Join(dir, "blobs")); len(left) != 0 {
		t.Errorf("blobs left with no entry: %v", left)
	}
}

// The chain reads the local store first, copies a remote hit into it as the layer is read,
// and writes both stores unless the remote is read-only.
func TestChainStore(t *testing.T) {
	ctx := context.Background()
	local := NewDirStore(filepath.Join(t.TempDir(), "local"))
	remote := NewLayoutStore(filepath.Join(t.TempDir(), "remote"))
	layer := randomLayer(t, 8192)
	key := NewKey("p", Text(InputInstruction, "RUN remote"))
	if err := remote.Put(ctx, layer, Entry{Key: key, Created: time.Now().Add(-time.Minute), Lineage: "pos-9"}); err != nil {
		t.Fatal(err)
	}
	c := NewChainStore(local, remote)
	r := Lookup(ctx, c, key, "p", nil, "", time.Hour, time.Now())
	if !r.Hit || r.Entry.Source != SourceLayout {
		t.Fatalf("first Lookup: %+v; want a hit in the remote", r)
	}
	if p := r.Layer.(interface{ Path() string }).Path(); p == "" {
		t.Fatalf("the remote layer, read through, has no local path")
	}
	r2 := Lookup(ctx, c, key, "p", nil, "", time.Hour, time.Now())
	if !r2.Hit || r2.Entry.Source != SourceLocal || !r2.Entry.Created.Equal(r.Entry.Created.UTC()) {
		t.Fatalf("second Lookup: %+v; want a local hit keeping the remote's creation time %s", r2, r.Entry.Created)
	}

	key2 := NewKey("p", Text(InputInstruction, "RUN new"))
	if err := NewChainStore(local, remote, RemoteReadOnly(true)).Put(ctx, layer, Entry{Key: key2, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := remote.Get(ctx, key2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a read-only remote was written: %v", err)
	}
	if _, _, err := local.Get(ctx, key2); err != nil {
		t.Fatalf("the local store was not written: %v", err)
	}
	key3 := NewKey("p", Text(InputInstruction, "RUN both"))
	if err := c.Put(ctx, nil, Entry{Key: key3, Created: time.Now(), Empty: true}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []Store{local, remote} {
		if _, e, err := s.Get(ctx, key3); err != nil || !e.Empty {
			t.Fatalf("%s: empty entry %+v, %v", s, e, err)
		}
	}
	// A local entry past the ttl: a newer remote one is used; without one, the local expires.
	key4 := NewKey("p", Text(InputInstruction, "RUN old"))
	if err := local.Put(ctx, layer, Entry{Key: key4, Created: time.Now().Add(-2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	ttlChain := NewChainStore(local, remote, ChainTTL(time.Hour))
	if r := Lookup(ctx, ttlChain, key4, "p", nil, "", time.Hour, time.Now()); r.Hit || !strings.Contains(r.Reason, "expired") {
		t.Fatalf("an expired local entry, none remote: %+v", r)
	}
	if err := remote.Put(ctx, layer, Entry{Key: key4, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if r := Lookup(ctx, ttlChain, key4, "p", nil, "", time.Hour, time.Now()); !r.Hit || r.Entry.Source != SourceLayout {
		t.Fatalf("an expired local entry, a fresh remote one: %+v", r)
	}
	if r := Lookup(ctx, ttlChain, key4, "p", nil, "", time.Hour, time.Now()); !r.Hit || r.Entry.Source != SourceLocal {
		t.Fatalf("after the remote entry was copied: %+v", r)
	}

	// A local-only chain misses plainly.
	if r := Lookup(ctx, NewChainStore(local, nil), NewKey("none"), "", nil, "", 0, time.Now()); r.Hit || r.Warning != "" {
		t.Fatalf("local-only miss: %+v", r)
	}
}

// BenchmarkLookupHit is a cache hit made ready to unpack: Lookup (which reads the layer once
// to verify it) and one more read of the blob, as the builder's unpacking does, for a 60 MB
// layer of random bytes (the bench `warm` workload's first RUN) in a cache repository (a
// registry on loopback) and in the local layer cache.
func BenchmarkLookupHit(b *testing.B) {
	ctx := context.Background()
	layer, err := random.Layer(60<<20, gzipLayer)
	if err != nil {
		b.Fatal(err)
	}
	size, _ := layer.Size()
	key := NewKey("p", Text(InputInstruction, "RUN deps"))
	e := Entry{Key: key, Created: time.Now()}
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	b.Cleanup(srv.Close)
	rs, err := NewRegistryStore(strings.TrimPrefix(srv.URL, "http://")+"/bench/cache", registry.WithRetries(0))
	if err != nil {
		b.Fatal(err)
	}
	stores := []Store{rs, NewDirStore(b.TempDir())}
	for _, s := range stores {
		if err := s.Put(ctx, layer, e); err != nil {
			b.Fatal(err)
		}
	}
	for i, name := range []string{"registry", "local"} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size)
			for n := 0; n < b.N; n++ {
				r := Lookup(ctx, stores[i], key, "p", nil, "", 0, time.Now())
				if !r.Hit {
					b.Fatalf("%+v", r)
				}
				rc, err := r.Layer.Compressed()
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, rc); err != nil {
					b.Fatal(err)
				}
				rc.Close()
			}
		})
	}
}

// TestDirStorePruneDerivedFirst: unpack forms (PruneOptions.Derived) count towards the bound
// and go before any layer cache entry, least recently used first; a stale temporary form is
// removed, a fresh one (being written) is not.
func TestDirStorePruneDerivedFirst(t *testing.T) {
	ctx := context.Background()
	s := NewDirStore(t.TempDir())
	key := NewKey("p", Text(InputInstruction, "RUN a"))
	if err := s.Put(ctx, randomLayer(t, 20000), Entry{Key: key, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	forms := t.TempDir()
	old := time.Now().Add(-2 * time.Hour)
	for i, n := range []string{"older.zst", "newer.zst", "stale.part", "fresh.part"} {
		p := filepath.Join(forms, n)
		if err := os.WriteFile(p, make([]byte, 30000), 0o644); err != nil {
			t.Fatal(err)
		}
		at := old.Add(time.Duration(i) * time.Minute)
		if n == "fresh.part" {
			at = time.Now()
		}
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
	full, err := s.Prune(ctx, PruneOptions{Derived: []string{forms}})
	if err != nil || full.Removed != 0 || full.RemovedForms != 0 {
		t.Fatalf("Prune without a bound: %+v, %v", full, err)
	}
	if _, err := os.Stat(filepath.Join(forms, "stale.part")); err == nil {
		t.Error("a temporary form older than the grace period was kept")
	}
	// Room for all but one form: the older one goes, the entry and the newer form stay.
	res, err := s.Prune(ctx, PruneOptions{MaxSize: full.Size - 1, Derived: []string{forms}})
	if err != nil {
		t.Fatal(err)
	}
	if res.RemovedForms != 1 || res.Removed != 0 || res.Size > full.Size-1 {
		t.Fatalf("Prune: %+v; want one form removed and no entry", res)
	}
	for n, want := range map[string]bool{"older.zst": false, "newer.zst": true, "fresh.part": true} {
		if _, err := os.Stat(filepath.Join(forms, n)); (err == nil) != want {
			t.Errorf("%s kept: %v, want %v", n, err == nil, want)
		}
	}
	if _, _, err := s.Get(ctx, key); err != nil {
		t.Fatalf("the layer cache entry went before the forms: %v", err)
	}
}
