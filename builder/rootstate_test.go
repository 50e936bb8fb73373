package builder_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/cache"
	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/internal/testenv"
	"github.com/kilnbuild/kiln/registry"
)

// stateBuild is a directory-mode build with a local layer cache and, when states is set, a
// state cache in it.
type stateBuild struct {
	t                          *testing.T
	ctxDir, root, work, layers string
	states                     string
	overlay                    bool
}

const stateDockerfile = "FROM scratch\nCOPY a.txt /a/a.txt\nCOPY b.txt /b.txt\nWORKDIR /srv\nCOPY app.txt /srv/app.txt\n"

func newStateBuild(t *testing.T, overlay bool) *stateBuild {
	dir := t.TempDir()
	sb := &stateBuild{t: t, ctxDir: filepath.Join(dir, "context"), root: filepath.Join(dir, "rootfs"),
		work: filepath.Join(dir, "work"), layers: filepath.Join(dir, "layers"), states: filepath.Join(dir, "states"),
		overlay: overlay}
	stateMust(t, os.MkdirAll(sb.ctxDir, 0o755))
	for _, f := range []string{"a.txt", "b.txt", "app.txt"} {
		sb.write(f, f+" v1\n")
	}
	return sb
}

func (sb *stateBuild) write(name, content string) {
	stateMust(sb.t, os.WriteFile(filepath.Join(sb.ctxDir, name), []byte(content), 0o644))
}

// build runs the build (with the state cache unless states is "") and returns its digest.
func (sb *stateBuild) build(states string) (string, *events) {
	sb.t.Helper()
	ev := &events{}
	opts := []builder.Option{builder.WithDirectoryRoot(sb.root), builder.WithWorkDir(sb.work),
		builder.WithContextDir(sb.ctxDir), builder.WithReproducible(true), builder.WithReporter(ev),
		builder.WithCache(nil, builder.CacheCopyLayers(true), builder.CacheLocal(cache.NewDirStore(sb.layers), cache.PruneOptions{}))}
	if states != "" {
		opts = append(opts, builder.WithStateCache(states, builder.StateCacheOverlay(sb.overlay)))
	}
	img, err := builder.Build(context.Background(), dockerfile.Source{Name: "Dockerfile", Data: []byte(stateDockerfile)}, opts...)
	if err != nil {
		sb.t.Fatalf("Build: %v", err)
	}
	d, err := img.Digest()
	if err != nil {
		sb.t.Fatal(err)
	}
	return d.String(), ev
}

// coldDigest is the digest of a build of the same context with no cache of any kind.
func (sb *stateBuild) coldDigest() string {
	cold := *sb
	dir := sb.t.TempDir()
	cold.root, cold.work, cold.layers = filepath.Join(dir, "rootfs"), filepath.Join(dir, "work"), filepath.Join(dir, "layers")
	d, _ := cold.build("")
	return d
}

// restores lists the root-from-state messages; added the layers unpacked into the state cache
// to make a root (not those of new steps, kept in the background for later builds).
func restores(ev *events) (restored, added []string) {
	for _, m := range ev.of(builder.EventExtract) {
		if strings.HasPrefix(m, "root restored from the state cache") {
			restored = append(restored, m)
		}
	}
	for _, m := range ev.of(builder.EventProgress) {
		if strings.HasPrefix(m, "state cache: layer") && strings.Contains(m, "unpacked into the cache") {
			added = append(added, m)
		}
	}
	return restored, added
}

// TestStateCacheRebuild: after an app-only change, the rebuild's root comes from the state
// cache (the layers of the two cached COPY steps and the WORKDIR, none unpacked) and the image is the one a
// build with no cache makes; a change to an earlier step restores only the layers before it;
// a damaged kept layer is not used but unpacked again. Both the overlay and the copy path.
func TestStateCacheRebuild(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the state cache keeps owners and overlay whiteouts")
	}
	for _, overlay := range []bool{true, false} {
		name := map[bool]string{true: "overlay", false: "copy"}[overlay]
		t.Run(name, func(t *testing.T) {
			sb := newStateBuild(t, overlay)
			sb.build(sb.states)
			sb.write("app.txt", "app v2\n")
			got, ev := sb.build(sb.states)
			restored, added := restores(ev)
			if len(restored) != 1 || !strings.Contains(restored[0], "by "+name+": 3 layers, all kept by earlier builds") || len(added) != 0 {
				t.Errorf("rebuild after an app-only change: restored %q, unpacked into the cache %q", restored, added)
			}
			if n := len(ev.of(builder.EventExtract)); n != 1 {
				t.Errorf("%d extract events, want only the restore: %q", n, ev.of(builder.EventExtract))
			}
			if want := sb.coldDigest(); got != want {
				t.Errorf("digest from a restored root %s, from a cold build %s", got, want)
			}
			checkRootAfter(t, sb.root, overlay, "app v2\n")

			// A change to b.txt: only the first COPY's layer is restored, b.txt's new content is built.
			sb.write("b.txt", "b v2\n")
			got, ev = sb.build(sb.states)
			if restored, _ := restores(ev); len(restored) != 1 || !strings.Contains(restored[0], ": 1 layers,") {
				t.Errorf("rebuild after a change to an earlier step: restored %q", restored)
			}
			if want := sb.coldDigest(); got != want {
				t.Errorf("after changing b.txt: digest %s, cold %s", got, want)
			}

			// A kept layer without its marker (damaged or partial) is unpacked again, not used.
			markers, _ := filepath.Glob(filepath.Join(sb.states, "v1", "layers", "*", "complete"))
			if len(markers) < 2 {
				t.Fatalf("state cache holds %d layers", len(markers))
			}
			for _, m := range markers {
				stateMust(t, os.Remove(m))
			}
			sb.write("app.txt", "app v3\n")
			got, ev = sb.build(sb.states)
			if restored, added := restores(ev); len(restored) != 1 || !strings.Contains(restored[0], "3 unpacked into the cache now") || len(added) != 3 {
				t.Errorf("rebuild with damaged kept layers: restored %q, unpacked %q", restored, added)
			}
			if want := sb.coldDigest(); got != want {
				t.Errorf("after damaging the state cache: digest %s, cold %s", got, want)
			}
		})
	}
}

// checkRootAfter: with overlay the root is unmounted and empty after Build; with copies it
// holds the files.
func checkRootAfter(t *testing.T, root string, overlay bool, app string) {
	t.Helper()
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), " "+root+" ") {
		t.Errorf("%s is still a mount point after Build", root)
	}
	b, err := os.ReadFile(filepath.Join(root, "srv/app.txt"))
	switch {
	case overlay && err == nil:
		t.Errorf("root holds srv/app.txt after an overlay build: %q", b)
	case !overlay && string(b) != app:
		t.Errorf("root srv/app.txt = %q, %v", b, err)
	case !overlay:
		for p, want := range map[string]string{"a/a.txt": "a.txt v1\n", "b.txt": "b.txt v1\n"} {
			if b, err := os.ReadFile(filepath.Join(root, p)); string(b) != want {
				t.Errorf("restored root %s = %q, %v", p, b, err)
			}
		}
	}
}

func stateMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// warmDockerfile is ../shared/bench/workloads/warm on the test Debian base.
const warmDockerfile = `RUN mkdir -p /deps && for i in $(seq 1 20); do head -c 3000000 /dev/urandom > /deps/dep$i.bin; done
RUN for i in $(seq 1 2000); do echo $i > /deps/meta$i.txt; done
COPY app /app
RUN ls -la /app > /app/listing.txt
`

// BenchmarkWarmRebuild times the `warm` workload in directory mode: a cold build, and a
// rebuild after an app-only change (the version file) with the local layer cache alone
// (cached layers unpacked), and with the state cache by overlay and by copy. Every rebuild
// iteration changes the app; each variant's cold build, untimed, comes first.
func BenchmarkWarmRebuild(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: RUN in namespaces, overlay mounts")
	}
	reg := testenv.StartRegistry(b, testenv.RegistryOptions{})
	base := testenv.PushDebian(b, reg, "bench/debian:bookworm")
	src := dockerfile.Source{Name: "Dockerfile", Data: []byte("FROM " + base + "\n" + warmDockerfile)}
	run := func(b *testing.B, dir string, n int, opts ...builder.Option) {
		b.Helper()
		ctxDir := filepath.Join(dir, "context")
		if err := os.MkdirAll(filepath.Join(ctxDir, "app"), 0o755); err != nil {
			b.Fatal(err)
		}
		code := make([]byte, 1<<20)
		for i := range code {
			code[i] = byte(i * 7)
		}
		os.WriteFile(filepath.Join(ctxDir, "app/code.bin"), code, 0o644)
		os.WriteFile(filepath.Join(ctxDir, "app/version.txt"), []byte(strings.Repeat("v", n+1)), 0o644)
		opts = append([]builder.Option{builder.WithDirectoryRoot(filepath.Join(dir, "rootfs")),
			builder.WithWorkDir(filepath.Join(dir, "work")), builder.WithContextDir(ctxDir),
			builder.WithPullOptions(registry.WithInsecureAll(true)), builder.WithOutput(io.Discard)}, opts...)
		if _, err := builder.Build(context.Background(), src, opts...); err != nil {
			b.Fatal(err)
		}
	}
	layerCache := func(dir string) builder.Option {
		return builder.WithCache(nil, builder.CacheLocal(cache.NewDirStore(filepath.Join(dir, "layers")), cache.PruneOptions{}))
	}
	b.Run("cold", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			run(b, b.TempDir(), 0, layerCache(b.TempDir()))
		}
	})
	b.Run("cold-state-overlay", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			dir := b.TempDir()
			run(b, dir, 0, layerCache(dir), builder.WithStateCache(filepath.Join(dir, "states")))
		}
	})
	variants := map[string][]builder.StateCacheOption{"layer-cache-only": nil,
		"state-overlay": {builder.StateCacheOverlay(true)}, "state-copy": {builder.StateCacheOverlay(false)}}
	for _, name := range []string{"layer-cache-only", "state-overlay", "state-copy"} {
		b.Run("rebuild/"+name, func(b *testing.B) {
			dir := b.TempDir()
			opts := []builder.Option{layerCache(dir)}
			if v := variants[name]; v != nil {
				opts = append(opts, builder.WithStateCache(filepath.Join(dir, "states"), v...))
			}
			run(b, dir, 0, opts...)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				run(b, dir, i+1, opts...)
			}
		})
	}
}

// tarLayer is a layer of the given entries (directories end in "/").
func tarLayer(t *testing.T, names ...string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		hdr := &tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(n))}
		if strings.HasSuffix(n, "/") {
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeDir, 0o755, 0
		}
		stateMust(t, tw.WriteHeader(hdr))
		if hdr.Size > 0 {
			tw.Write([]byte(n))
		}
	}
	stateMust(t, tw.Close())
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	stateMust(t, err)
	return l
}

// TestStateCacheBaseNotSelfContained: a base image whose second layer names a directory it
// does not contain cannot be kept unpacked on its own; the build unpacks it as without the
// state cache (saying why), later builds do not try again, and the images are the same.
func TestStateCacheBaseNotSelfContained(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the state cache keeps owners and overlay whiteouts")
	}
	img, err := mutate.AppendLayers(empty.Image, tarLayer(t, "etc/", "etc/a"), tarLayer(t, "etc/b"))
	stateMust(t, err)
	lp := filepath.Join(t.TempDir(), "oci")
	p, err := layout.Write(lp, empty.Index)
	stateMust(t, err)
	stateMust(t, p.AppendImage(img))
	sb := newStateBuild(t, true)
	build := func(states, layers string) (string, *events) {
		t.Helper()
		ev := &events{}
		opts := []builder.Option{builder.WithDirectoryRoot(sb.root), builder.WithWorkDir(sb.work),
			builder.WithContextDir(sb.ctxDir), builder.WithReproducible(true), builder.WithReporter(ev),
			builder.WithBuildContexts(builder.BuildContext{Name: "base", Value: "oci-layout://" + lp}),
			builder.WithCache(nil, builder.CacheCopyLayers(true), builder.CacheLocal(cache.NewDirStore(layers), cache.PruneOptions{}))}
		if states != "" {
			opts = append(opts, builder.WithStateCache(states))
		}
		out, err := builder.Build(context.Background(), dockerfile.Source{Name: "Dockerfile",
			Data: []byte("FROM base\nCOPY a.txt /etc/x.txt\nCOPY app.txt /app.txt\n")}, opts...)
		if err != nil {
			t.Fatalf("Build: %v", err)
		}
		d, err := out.Digest()
		stateMust(t, err)
		return d.String(), ev
	}
	for i, app := range []string{"app v1\n", "app v2\n"} {
		sb.write("app.txt", app)
		got, ev := build(sb.states, sb.layers)
		notes := strings.Join(ev.of(builder.EventNote), "\n")
		if restored, _ := restores(ev); len(restored) != 0 || !strings.Contains(notes, "not self-contained") {
			t.Errorf("build %d: restored %q; notes:\n%s", i, restored, notes)
		}
		if i == 1 && !strings.Contains(notes, "found earlier") {
			t.Errorf("the second build tried the refused layer again; notes:\n%s", notes)
		}
		if b, err := os.ReadFile(filepath.Join(sb.root, "etc/b")); string(b) != "etc/b" {
			t.Errorf("build %d: root etc/b = %q, %v", i, b, err)
		}
		if want, _ := build("", filepath.Join(t.TempDir(), "layers")); got != want {
			t.Errorf("build %d: %s with the state cache, %s without", i, got, want)
		}
	}
}
