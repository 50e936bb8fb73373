package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/kilnbuild/kiln/internal/testenv"
)

const cacheDockerfile = `ARG BASE
FROM ${BASE}
RUN echo one > /one.txt && echo RAN-ONE
COPY app /app
RUN cat /app/code.bin > /copied.txt && echo RAN-TWO
`

// TestPodLayerCache runs the executor as a pod several times against one registry and one
// persistent /cache volume: a cold build fills the cache, a warm one hits everything (no RUN
// runs, the root is not even unpacked, same digest), a changed file misses from its COPY on
// and names the file, --no-push-cache writes nothing, and a cache repository that fails every
// write leaves the build successful with a warning.
func TestPodLayerCache(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	ctx := writeContext(t, map[string]string{
		"Dockerfile":       cacheDockerfile,
		"app/code.bin":     "version 1\n",
		"app/notes.tmp":    "ignored\n",
		".dockerignore":    "**/*.tmp\n",
		"unused/other.txt": "not copied\n",
	})
	cacheDir := t.TempDir()
	cacheRepo := reg.Ref("it/cache")
	build := func(extra ...string) testenv.PodResult {
		t.Helper()
		p := registryPod(t, ctx, append([]string{"--build-arg", "BASE=" + base, "--destination", reg.Ref("it/app:1"),
			"--insecure", "--insecure-pull", "--reproducible", "--cache=true", "--cache-dir", "/cache",
			"--cache-copy-layers", "--digest-file", "/workspace/digest"}, extra...)...)
		p.Mounts = map[string]string{"/cache": cacheDir}
		return runPodWant(t, p, true)
	}
	digest := func() string { return readFile(t, filepath.Join(ctx, "digest")) }
	tags := func() []string {
		repo, err := name.NewRepository(cacheRepo)
		if err != nil {
			t.Fatal(err)
		}
		list, err := remote.List(repo, reg.RemoteOptions()...)
		if err != nil {
			t.Fatalf("listing %s: %v", cacheRepo, err)
		}
		return list
	}
	setCode := func(content string) {
		if err := os.WriteFile(filepath.Join(ctx, "app/code.bin"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	cold := build("--cache-repo", cacheRepo)
	if !strings.Contains(cold.Stdout, "RAN-ONE") || !strings.Contains(cold.Stdout, "RAN-TWO") {
		t.Fatalf("cold build did not run both RUNs:\n%s", cold.Stdout)
	}
	if n := strings.Count(cold.Stderr, "cache miss"); n != 3 {
		t.Errorf("cold build: %d cache misses logged, want 3:\n%s", n, cold.Stderr)
	}
	coldDigest := digest()
	// 3 entries, each tagged by key and by position.
	if n := len(tags()); n != 6 {
		t.Errorf("cache repo holds %d tags after a cold build, want 6: %v", n, tags())
	}
	if blobs, _ := filepath.Glob(filepath.Join(cacheDir, "blobs", "sha256", "*")); len(blobs) == 0 {
		t.Errorf("--cache-dir holds no base image layer after a build")
	}

	t.Run("warm build hits everything", func(t *testing.T) {
		warm := build("--cache-repo", cacheRepo)
		if strings.Contains(warm.Stdout, "RAN-") {
			t.Errorf("a RUN executed on a warm build:\n%s", warm.Stdout)
		}
		if n := strings.Count(warm.Stderr, "cache hit"); n != 3 {
			t.Errorf("%d cache hits logged, want 3:\n%s", n, warm.Stderr)
		}
		if strings.Contains(warm.Stderr, "Unpacked") {
			t.Errorf("the root was unpacked although every instruction hit:\n%s", warm.Stderr)
		}
		if d := digest(); d != coldDigest {
			t.Errorf("warm build digest %s, cold %s", d, coldDigest)
		}
	})

	t.Run("a changed file misses from its COPY on", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(ctx, "app/notes.tmp"), []byte("ignored change"), 0o644); err != nil {
			t.Fatal(err)
		}
		setCode("version 2\n")
		res := build("--cache-repo", cacheRepo)
		if strings.Contains(res.Stdout, "RAN-ONE") || !strings.Contains(res.Stdout, "RAN-TWO") {
			t.Errorf("want only the second RUN to run:\n%s", res.Stdout)
		}
		if !strings.Contains(res.Stderr, "app/code.bin changed (content)") {
			t.Errorf("the COPY miss does not name app/code.bin:\n%s", res.Stderr)
		}
		if !strings.Contains(res.Stderr, "an earlier instruction or the base image changed") {
			t.Errorf("the later RUN's miss is not explained by the earlier miss:\n%s", res.Stderr)
		}
		if n := strings.Count(res.Stderr, "cache hit"); n != 1 {
			t.Errorf("%d hits, want 1 (the first RUN):\n%s", n, res.Stderr)
		}
		fs := testenv.ExportImage(t, reg, reg.Ref("it/app:1"))
		if e := file(t, fs, "copied.txt"); string(e.Content) != "version 2\n" {
			t.Errorf("/copied.txt = %q: the RUN after the miss did not see the new file", e.Content)
		}
	})

	t.Run("no-push-cache writes nothing", func(t *testing.T) {
		before := len(tags())
		setCode("version 3\n")
		res := build("--cache-repo", cacheRepo, "--no-push-cache")
		if !strings.Contains(res.Stdout, "RAN-TWO") {
			t.Errorf("the changed build did not run:\n%s", res.Stdout)
		}
		if after := len(tags()); after != before {
			t.Errorf("--no-push-cache: cache repo went from %d to %d tags", before, after)
		}
	})

	t.Run("a cache that refuses writes only warns", func(t *testing.T) {
		proxy := startFaultProxy(t, reg, nil)
		proxy.inject(fault{Method: "POST", PathPart: "/it/refused/", Times: 1000, Status: 500, Message: "cache is read-only"})
		res := build("--cache-repo", proxy.Addr+"/it/refused", "--skip-push-permission-check", "--cache-dir-layers=false")
		if !strings.Contains(res.Stderr, "writing cache entry") || !strings.Contains(res.Stderr, "the build goes on") {
			t.Errorf("no warning about the failed cache write:\n%s", res.Stderr)
		}
		if proxy.count("POST", "/it/refused/") == 0 {
			t.Errorf("no cache write was attempted")
		}
	})
}
