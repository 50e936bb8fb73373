package builder_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/cache"
	"github.com/kilnbuild/kiln/dockerfile"
)

// TestCacheLocal: with a local layer cache before a cache repository (directory mode), the
// first build fills both, the second hits locally, a build with a new local directory hits in
// the repository and fills it, a local cache alone works, and a local directory inside the
// root is not used. The summary names where each step hit.
func TestCacheLocal(t *testing.T) {
	dir := t.TempDir()
	ctxDir := filepath.Join(dir, "context")
	if err := os.MkdirAll(ctxDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"a.txt", "b.txt"} {
		if err := os.WriteFile(filepath.Join(ctxDir, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src := dockerfile.Source{Name: "Dockerfile", Data: []byte("FROM scratch\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\n")}
	repo := cache.NewLayoutStore(filepath.Join(dir, "repo"))
	build := func(remote cache.Store, local string) *events {
		t.Helper()
		ev := &events{}
		_, err := builder.Build(context.Background(), src, builder.WithDirectoryRoot(filepath.Join(dir, "rootfs")),
			builder.WithWorkDir(filepath.Join(dir, "work")), builder.WithContextDir(ctxDir), builder.WithReproducible(true),
			builder.WithCache(remote, builder.CacheCopyLayers(true),
				builder.CacheLocal(cache.NewDirStore(local), cache.PruneOptions{})), builder.WithReporter(ev))
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	sources := func(ev *events) []string {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		var out []string
		for _, e := range ev.all {
			if e.Kind == builder.EventCacheHit {
				out = append(out, e.CacheSource)
			}
		}
		return out
	}
	summary := func(ev *events) string {
		return strings.Join(slices.DeleteFunc(ev.of(builder.EventNote), func(s string) bool {
			return !strings.HasPrefix(s, "Cache summary")
		}), "\n")
	}
	local := filepath.Join(dir, "local")
	if got := sources(build(repo, local)); len(got) != 0 {
		t.Fatalf("cold build hit %v", got)
	}
	ev := build(repo, local)
	if got := sources(ev); !slices.Equal(got, []string{"local", "local"}) {
		t.Fatalf("second build hit in %v, want local twice", got)
	}
	if s := summary(ev); !strings.Contains(s, "2 hit locally, 0 in the registry, 0 in an oci: layout, 0 missed") ||
		!strings.Contains(s, "COPY b.txt /b.txt: hit (local)") {
		t.Errorf("summary:\n%s", s)
	}
	fresh := filepath.Join(dir, "fresh")
	if got := sources(build(repo, fresh)); !slices.Equal(got, []string{"oci", "oci"}) {
		t.Fatalf("a new local directory: hits in %v, want the oci: repository twice", got)
	}
	if got := sources(build(nil, fresh)); !slices.Equal(got, []string{"local", "local"}) {
		t.Fatalf("the local cache alone, filled from the repository: hits in %v", got)
	}
	inRoot := build(nil, filepath.Join(dir, "rootfs", "cache"))
	if warns := strings.Join(inRoot.of(builder.EventWarning), "\n"); !strings.Contains(warns, "inside the root") {
		t.Errorf("no warning about a local cache inside the root: %q", warns)
	}
}
