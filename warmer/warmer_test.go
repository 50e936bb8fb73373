package warmer

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/kilnbuild/kiln/cache"
	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/internal/testenv"
	"github.com/kilnbuild/kiln/registry"
)

// logRecorder keeps every line logged.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) Infof(f string, a ...any) { l.add("INFO " + fmt.Sprintf(f, a...)) }
func (l *logRecorder) Warnf(f string, a ...any) { l.add("WARN " + fmt.Sprintf(f, a...)) }
func (l *logRecorder) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
}
func (l *logRecorder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// pushRandom pushes an image of n random layers to reg as repoTag.
func pushRandom(t *testing.T, reg *testenv.Registry, repoTag string, n int) v1.Image {
	t.Helper()
	img, err := random.Image(64<<10, int64(n))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(reg.Ref(repoTag), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, reg.RemoteOptions()...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return img
}

// TestWarmFillsTheBaseCache warms two images from a real registry into an empty directory,
// then checks what the executor's base cache finds there, that a second warm skips both, that
// --force downloads again, and that an unknown image fails alone, named with its registry.
func TestWarmFillsTheBaseCache(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	busybox := testenv.PushBusybox(t, reg, "base/busybox:1")
	multi := pushRandom(t, reg, "base/multi:1", 3)
	multiRef := reg.Ref("base/multi:1")
	dir := t.TempDir()
	pull := WithPullOptions(registry.WithInsecure(reg.Addr))
	ctx := context.Background()

	log := &logRecorder{}
	results, err := Warm(ctx, dir, Refs(busybox, multiRef), pull, WithLog(log))
	if err != nil {
		t.Fatalf("Warm: %v\n%s", err, log)
	}
	bc := cache.NewBaseCache(dir)
	for i, r := range results {
		if r.Skipped || r.Downloaded == 0 || r.Digest.Hex == "" {
			t.Errorf("first warm of %s: %+v, want a download", r.Ref.Image, r)
		}
		if !bc.HasImage(r.Digest) {
			t.Errorf("%s is not in the cache in full after warming", r.Ref.Image)
		}
		ref, _ := name.ParseReference([]string{busybox, multiRef}[i])
		if res, ok := bc.Resolved(ref, cache.PlatformKey(v1.Platform{OS: "linux", Architecture: runtimeArch()})); !ok || res.Digest != r.Digest {
			t.Errorf("resolution of %s: %+v, %v; want %s", ref, res, ok, r.Digest)
		}
	}
	if want, _ := multi.Digest(); results[1].Digest != want || results[1].Layers != 3 {
		t.Errorf("multi: digest %s with %d layers, want %s with 3", results[1].Digest, results[1].Layers, want)
	}
	forms := strings.Count(log.String(), ": unpack form made in ")
	if n := strings.Count(log.String(), "  layer ") - forms; n != 4 || forms != 4 {
		t.Errorf("%d layer progress lines and %d unpack forms made, want 4 and 4 (1 + 3):\n%s", n, forms, log)
	}
	ls, _ := multi.Layers()
	for _, l := range ls {
		diffID, _ := l.DiffID()
		if f, ok := bc.OpenForm(diffID); !ok {
			t.Errorf("no unpack form of layer %s after warming", diffID)
		} else {
			f.Close()
		}
	}
	if !strings.Contains(log.String(), "Cached "+multiRef) || !strings.Contains(log.String(), "KiB in ") {
		t.Errorf("no summary with size and duration:\n%s", log)
	}

	t.Run("a second warm skips", func(t *testing.T) {
		log := &logRecorder{}
		results, err := Warm(ctx, dir, Refs(busybox, multiRef), pull, WithLog(log))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range results {
			if !r.Skipped || r.Downloaded != 0 {
				t.Errorf("second warm of %s: %+v, want skipped", r.Ref.Image, r)
			}
		}
		if n := strings.Count(log.String(), "already cached"); n != 2 {
			t.Errorf("%d images reported as already cached, want 2:\n%s", n, log)
		}
	})

	t.Run("--force downloads again", func(t *testing.T) {
		log := &logRecorder{}
		results, err := Warm(ctx, dir, Refs(multiRef), pull, WithForce(true), WithLog(log))
		if err != nil {
			t.Fatal(err)
		}
		size := int64(0)
		ls, _ := multi.Layers()
		for _, l := range ls {
			n, _ := l.Size()
			size += n
		}
		if r := results[0]; r.Skipped || r.Downloaded != size {
			t.Errorf("forced warm: %+v, want %d bytes downloaded", r, size)
		}
		if !cache.NewBaseCache(dir).HasImage(results[0].Digest) {
			t.Error("the image is not complete after a forced warm")
		}
	})

	t.Run("an unknown image fails alone", func(t *testing.T) {
		missing := reg.Ref("nope/missing:1")
		results, err := Warm(ctx, dir, Refs(missing, busybox), pull)
		if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "registry "+reg.Addr) {
			t.Fatalf("error %v, want one naming %s and registry %s", err, missing, reg.Addr)
		}
		if results[0].Err == nil || results[1].Err != nil || !results[1].Skipped {
			t.Errorf("results %+v: want the first failed, the second cached", results)
		}
	})

	t.Run("an unwritable cache fails naming the directory", func(t *testing.T) {
		// A file where the directory should be: no one, root included, can write below it.
		notDir := filepath.Join(t.TempDir(), "cache")
		if err := os.WriteFile(notDir, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		log := &logRecorder{}
		_, err := Warm(ctx, notDir, Refs(busybox), pull, WithLog(log))
		if err == nil || !strings.Contains(err.Error(), notDir) || !strings.Contains(log.String(), "not a directory") {
			t.Fatalf("error %v, want one naming %s; log:\n%s", err, notDir, log)
		}
	})
}

// TestDockerfileRefs lists a Dockerfile's FROM images with ARGs before FROM expanded, stage
// names and scratch skipped, repeats dropped and FROM --platform kept.
func TestDockerfileRefs(t *testing.T) {
	df := filepath.Join(t.TempDir(), "Dockerfile")
	os.WriteFile(df, []byte(`ARG REG=registry.example
ARG BASE=${REG}/base:1
FROM ${BASE} AS build
RUN true
FROM scratch AS empty
FROM build AS again
FROM --platform=linux/arm64 ${REG}/tool:2 AS tool
FROM ${BASE}
COPY --from=tool / /
`), 0o644)
	src, err := dockerfile.FromFile(df)
	if err != nil {
		t.Fatal(err)
	}
	refs, err := DockerfileRefs(src, []string{"REG=mirror.example:5000"}, nil, dockerfile.Platform{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Ref{{Image: "mirror.example:5000/base:1"}, {Image: "mirror.example:5000/tool:2", Platform: "linux/arm64"}}
	if fmt.Sprint(refs) != fmt.Sprint(want) {
		t.Errorf("DockerfileRefs = %v, want %v", refs, want)
	}
	src = dockerfile.Source{Name: df, Data: []byte("FROM ${MISSING:?needs a value}\n")}
	if _, err := DockerfileRefs(src, nil, nil, dockerfile.Platform{}); err == nil || !strings.Contains(err.Error(), df+":1") {
		t.Errorf("error %v, want one naming %s:1", err, df)
	}
}

func runtimeArch() string { return runtime.GOARCH }

// slowImage is an image whose layers are read a little at a time, slowly.
type slowImage struct{ v1.Image }

func (i slowImage) Layers() ([]v1.Layer, error) {
	ls, err := i.Image.Layers()
	for n := range ls {
		ls[n] = slowLayer{ls[n]}
	}
	return ls, err
}

type slowLayer struct{ v1.Layer }

func (l slowLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Compressed()
	return slowReader{rc}, err
}

type slowReader struct{ io.ReadCloser }

func (r slowReader) Read(p []byte) (int, error) {
	time.Sleep(5 * time.Millisecond)
	return r.ReadCloser.Read(p[:min(len(p), 4096)])
}

// TestLayerProgress: a layer still downloading is reported with how much was read so far.
func TestLayerProgress(t *testing.T) {
	img, err := random.Image(64<<10, 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bc := cache.NewBaseCache(dir)
	log := &logRecorder{}
	o := &options{log: log, jobs: 1, every: 10 * time.Millisecond}
	n, err := fetchLayers(context.Background(), bc.Image(slowImage{img}), bc, dir, o)
	if err != nil || n == 0 {
		t.Fatalf("fetchLayers: %d bytes, %v", n, err)
	}
	if !strings.Contains(log.String(), " of 64.") || !strings.Contains(log.String(), " after ") {
		t.Errorf("no progress line while the layer downloaded:\n%s", log)
	}
}
