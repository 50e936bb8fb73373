package builder_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/cache"
	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/internal/testenv"
	"github.com/kilnbuild/kiln/registry"
)

// TestBaseImageUnpackForms: a build with a base image cache keeps each base layer's unpack
// form. A rebuild reads the form, not the blob: with the blob deleted and the registry gone it
// still builds the same image. A damaged form is removed, with a warning, and the image is
// unpacked again from its blob, giving the same image; the next build makes the form anew.
func TestBaseImageUnpackForms(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	tag := testenv.PushBusybox(t, reg, "base/busybox:forms")
	dir := t.TempDir()
	ctxDir := filepath.Join(dir, "context")
	os.MkdirAll(ctxDir, 0o755)
	os.WriteFile(filepath.Join(ctxDir, "a.txt"), []byte("a"), 0o644)
	cacheDir := filepath.Join(dir, "cache")
	src := dockerfile.Source{Name: "Dockerfile", Data: []byte("FROM " + tag + "\nCOPY a.txt /etc/a.txt\n")}
	var mu sync.Mutex
	var warnings []string
	build := func() v1.Hash {
		t.Helper()
		bc := cache.NewBaseCache(cacheDir, cache.BaseCacheWarnings(func(f string, a ...any) {
			mu.Lock()
			warnings = append(warnings, fmt.Sprintf(f, a...))
			mu.Unlock()
		}))
		img, err := builder.Build(context.Background(), src, builder.WithDirectoryRoot(filepath.Join(dir, "rootfs")),
			builder.WithWorkDir(filepath.Join(dir, "work")), builder.WithContextDir(ctxDir), builder.WithReproducible(true),
			builder.WithBaseImageCache(bc), builder.WithOutput(io.Discard),
			builder.WithPullOptions(registry.WithInsecureAll(true), registry.WithRetries(0)))
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "rootfs", "bin", "busybox")); err != nil {
			t.Fatalf("the base was not unpacked: %v", err)
		}
		return d
	}
	forms := func() []string {
		t.Helper()
		m, _ := filepath.Glob(filepath.Join(cacheDir, cache.FormsDir, "sha256", "*"))
		return m
	}

	want := build()
	made := forms()
	if len(made) != 1 || !strings.HasSuffix(made[0], ".zst") {
		t.Fatalf("unpack forms after the first build: %v, want the one layer's .zst", made)
	}
	blobs, _ := filepath.Glob(filepath.Join(cacheDir, "blobs", "sha256", "*"))
	for _, b := range blobs {
		os.Remove(b)
	}
	if err := reg.Kill(); err != nil {
		t.Fatal(err)
	}
	if got := build(); got != want {
		t.Fatalf("rebuild from the form: image %s, want %s", got, want)
	}

	if err := reg.Restart(t); err != nil {
		t.Fatal(err)
	}
	form, err := os.ReadFile(made[0])
	if err != nil {
		t.Fatal(err)
	}
	for i := len(form) / 3; i < len(form)/3+64; i++ {
		form[i] ^= 0x5a
	}
	if err := os.WriteFile(made[0], form, 0o644); err != nil {
		t.Fatal(err)
	}
	warnings = nil
	if got := build(); got != want {
		t.Fatalf("rebuild past a damaged form: image %s, want %s", got, want)
	}
	if w := strings.Join(warnings, "\n"); !strings.Contains(w, "unpack form") || !strings.Contains(w, "damaged") {
		t.Errorf("no warning about the damaged form: %q", w)
	}
	again, err := os.ReadFile(made[0])
	if err != nil || string(again) == string(form) {
		t.Fatalf("the damaged form was not replaced by a good one (read: %v)", err)
	}
	if left, _ := filepath.Glob(filepath.Join(cacheDir, cache.FormsDir, "sha256", "*.part")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
