package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/cache"
	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/internal/testenv"
	"github.com/kilnbuild/kiln/registry"
)

// rebuildEvents records a build's events.
type rebuildEvents struct {
	mu  sync.Mutex
	all []builder.Event
}

func (e *rebuildEvents) Report(ev builder.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

// extracts are the messages of the build's extract events, and those of layers unpacked into
// the state cache to make a root.
func (e *rebuildEvents) extracts() (extract, unpacked []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.all {
		switch {
		case ev.Kind == builder.EventExtract:
			extract = append(extract, ev.Message)
		case ev.Kind == builder.EventProgress && strings.Contains(ev.Message, "unpacked into the cache"):
			unpacked = append(unpacked, ev.Message)
		case ev.Kind == builder.EventProgress && strings.Contains(ev.Message, "pulled"):
			unpacked = append(unpacked, ev.Message) // a layer unpacked into the root
		}
	}
	return extract, unpacked
}

// TestDirRebuildFromStateCache is the `warm` workload's shape in directory mode on busybox:
// two cached RUN steps (the second deletes a file the first made, so the kept layers hold a
// whiteout and a hardlink), an app-only change, and a last RUN that reads the restored root
// and appends to one name of the hardlinked file (both names change, as in a plain directory). The rebuild's
// root comes from the state cache, by overlay and by copy, with no layer unpacked, and its
// image is the one a build with no cache at all makes (--reproducible).
func TestDirRebuildFromStateCache(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	src := dockerfile.Source{Name: "Dockerfile", Data: []byte("FROM " + base + `
RUN mkdir -p /deps && for i in 1 2 3 4 5 6 7 8 9; do echo dep$i > /deps/dep$i.txt; done && rm /bin/vi
RUN rm /deps/dep1.txt && echo meta > /deps/meta.txt && ln /deps/meta.txt /deps/meta-link.txt
COPY app /app
RUN ls /deps /app /bin > /app/listing.txt && echo more >> /deps/meta.txt && cat /deps/*.txt /app/version.txt > /app/all.txt
`)}
	for _, overlay := range []bool{true, false} {
		name := map[bool]string{true: "overlay", false: "copy"}[overlay]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			ctxDir := writeContext(t, map[string]string{"app/version.txt": "1\n", "app/code.bin": "code"})
			build := func(layers, states string) (string, *rebuildEvents) {
				t.Helper()
				ev := &rebuildEvents{}
				opts := []builder.Option{builder.WithDirectoryRoot(filepath.Join(dir, "rootfs")),
					builder.WithWorkDir(filepath.Join(dir, "work")), builder.WithContextDir(ctxDir),
					builder.WithPullOptions(registry.WithInsecureAll(true)), builder.WithReproducible(true),
					builder.WithReporter(ev), builder.WithCache(nil, builder.CacheLocal(cache.NewDirStore(layers), cache.PruneOptions{}))}
				if states != "" {
					opts = append(opts, builder.WithStateCache(states, builder.StateCacheOverlay(overlay)))
				}
				img, err := builder.Build(context.Background(), src, opts...)
				if err != nil {
					t.Fatalf("Build: %v", err)
				}
				d, err := img.Digest()
				if err != nil {
					t.Fatal(err)
				}
				return d.String(), ev
			}
			layers, states := filepath.Join(dir, "layers"), filepath.Join(dir, "states")
			build(layers, states)
			if err := os.WriteFile(filepath.Join(ctxDir, "app/version.txt"), []byte("2\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			got, ev := build(layers, states)
			extract, unpacked := ev.extracts()
			if len(extract) != 1 || !strings.Contains(extract[0], "by "+name+": 3 layers, all kept by earlier builds") || len(unpacked) != 0 {
				t.Errorf("rebuild: extract events %q, layers unpacked %q", extract, unpacked)
			}
			want, _ := build(filepath.Join(t.TempDir(), "layers"), "") // cold, no cache of any kind
			if got != want {
				t.Errorf("rebuild from the state cache gave %s, a cold build %s", got, want)
			}
		})
	}
}

// TestDirRebuildSharedStateCache: two builds at once, each with its own root, work directory
// and layer cache, share one state cache; both add the same layers to it, neither fails nor
// sees the other's partial layers, their images are the same, and a third build after an
// app-only change finds every layer it needs there.
func TestDirRebuildSharedStateCache(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	src := dockerfile.Source{Name: "Dockerfile", Data: []byte("FROM " + base + `
RUN mkdir -p /deps && for i in 1 2 3 4 5 6 7 8 9; do echo dep$i > /deps/dep$i.txt; done
COPY app /app
RUN cat /deps/*.txt /app/version.txt > /app/all.txt
`)}
	ctxDir := writeContext(t, map[string]string{"app/version.txt": "1\n"})
	states := filepath.Join(t.TempDir(), "states")
	build := func(dir string) (string, *rebuildEvents, error) {
		ev := &rebuildEvents{}
		img, err := builder.Build(context.Background(), src, builder.WithDirectoryRoot(filepath.Join(dir, "rootfs")),
			builder.WithWorkDir(filepath.Join(dir, "work")), builder.WithContextDir(ctxDir),
			builder.WithPullOptions(registry.WithInsecureAll(true)), builder.WithReproducible(true), builder.WithReporter(ev),
			builder.WithCache(nil, builder.CacheLocal(cache.NewDirStore(filepath.Join(dir, "layers")), cache.PruneOptions{})),
			builder.WithStateCache(states))
		if err != nil {
			return "", ev, err
		}
		d, err := img.Digest()
		return d.String(), ev, err
	}
	dirs := []string{t.TempDir(), t.TempDir()}
	digests := make([]string, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			digests[i], _, errs[i] = build(dirs[i])
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("build %d: %v", i, err)
		}
	}
	if digests[0] != digests[1] {
		t.Errorf("concurrent builds gave %s and %s", digests[0], digests[1])
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "app/version.txt"), []byte("2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, ev, err := build(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	if extract, unpacked := ev.extracts(); len(extract) != 1 || !strings.Contains(extract[0], "all kept by earlier builds") || len(unpacked) != 0 {
		t.Errorf("rebuild: extract events %q, layers unpacked %q", extract, unpacked)
	}
	if partial, _ := filepath.Glob(filepath.Join(states, "v1", "tmp", "*")); len(partial) != 0 {
		t.Errorf("temporary layer directories left: %v", partial)
	}
}

// TestDirRebuildMultiStageStateCache: stages built on an earlier stage, a stage run beside
// another in a side root (parallel stages), and COPY --from, with the state cache: the cold
// build and a rebuild after an app-only change give the images of builds with no cache.
func TestDirRebuildMultiStageStateCache(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	src := dockerfile.Source{Name: "Dockerfile", Data: []byte("FROM " + base + ` AS deps
RUN mkdir /deps && echo one > /deps/one && rm /bin/vi
FROM ` + base + ` AS tools
RUN mkdir /tools && echo tool > /tools/t
FROM deps AS app
COPY app /app
RUN cat /deps/one /app/version.txt > /app/all.txt
FROM deps
COPY --from=tools /tools /tools
COPY --from=app /app /app
RUN ls /deps /tools /app /bin > /listing.txt
`)}
	ctxDir := writeContext(t, map[string]string{"app/version.txt": "1\n"})
	dir := t.TempDir()
	build := func(layers, states string) string {
		t.Helper()
		opts := []builder.Option{builder.WithDirectoryRoot(filepath.Join(dir, "rootfs")),
			builder.WithWorkDir(filepath.Join(dir, "work")), builder.WithContextDir(ctxDir),
			builder.WithPullOptions(registry.WithInsecureAll(true)), builder.WithReproducible(true),
			builder.WithCache(nil, builder.CacheLocal(cache.NewDirStore(layers), cache.PruneOptions{}))}
		if states != "" {
			opts = append(opts, builder.WithStateCache(states))
		}
		img, err := builder.Build(context.Background(), src, opts...)
		if err != nil {
			t.Fatalf("Build: %v", err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d.String()
	}
	layers, states := filepath.Join(dir, "layers"), filepath.Join(dir, "states")
	for _, version := range []string{"1\n", "2\n"} {
		if err := os.WriteFile(filepath.Join(ctxDir, "app/version.txt"), []byte(version), 0o644); err != nil {
			t.Fatal(err)
		}
		got := build(layers, states)
		if want := build(filepath.Join(t.TempDir(), "layers"), ""); got != want {
			t.Errorf("version %q: with the state cache %s, with no cache %s", version, got, want)
		}
	}
}
