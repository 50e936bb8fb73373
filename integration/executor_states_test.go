package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/executor"
	"github.com/kilnbuild/kiln/internal/testenv"
)

// TestDirectoryModeStateCache: the executor in directory mode with --cache and --cache-dir
// keeps unpacked layers in --cache-dir/rootstates, so a rebuild after an app-only change
// restores its root from them (nothing unpacked) and makes the image a cold build makes.
// With --cache-dir-layers=false nothing is kept there.
func TestDirectoryModeStateCache(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	ctxDir := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + base + "\nRUN mkdir /deps && for i in 1 2 3; do echo $i > /deps/$i; done\n" +
			"COPY app.txt /app.txt\nRUN cat /deps/2 /app.txt > /combined\n",
		"app.txt": "v1\n",
	})
	cacheDir := t.TempDir()
	build := func(extra ...string) dirResult {
		args := append([]string{"--no-push", "--insecure-pull", "--reproducible", "--cache", "--cache-dir", cacheDir,
			"--cache-repo", "oci:" + filepath.Join(cacheDir, "repo")}, extra...)
		r := runDirectory(t, ctxDir, filepath.Join(t.TempDir(), "root"), t.TempDir(), args...)
		r.mustSucceed(t)
		return r
	}
	build()
	if des, err := os.ReadDir(filepath.Join(cacheDir, executor.StateCacheDir)); err != nil || len(des) == 0 {
		t.Fatalf("--cache-dir holds no %s after a build (%v)", executor.StateCacheDir, err)
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "app.txt"), []byte("v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	warm := build()
	if !strings.Contains(warm.log, "oot restored from the state cache by ") {
		t.Errorf("the rebuild did not restore its root from the state cache:\n%s", warm.log)
	}
	cold := runDirectory(t, ctxDir, filepath.Join(t.TempDir(), "root"), t.TempDir(),
		"--no-push", "--insecure-pull", "--reproducible")
	cold.mustSucceed(t)
	if w, c := imageDigest(t, warm.img), imageDigest(t, cold.img); w != c {
		t.Errorf("the rebuild from the state cache made %s, a build without any cache %s", w, c)
	}

	other := t.TempDir()
	r := runDirectory(t, ctxDir, filepath.Join(t.TempDir(), "root"), t.TempDir(), "--no-push", "--insecure-pull",
		"--cache", "--cache-dir", other, "--cache-dir-layers=false", "--cache-repo", "oci:"+filepath.Join(other, "repo"))
	r.mustSucceed(t)
	if _, err := os.Stat(filepath.Join(other, executor.StateCacheDir)); err == nil {
		t.Errorf("--cache-dir-layers=false kept layer states in %s", other)
	}
}

// imageDigest is img's manifest digest.
func imageDigest(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}
