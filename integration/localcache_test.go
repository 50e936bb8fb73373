package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/testenv"
	"github.com/kilnbuild/kiln/registry"
)

// The base comes from an OCI layout in the context (a named build context), so that a build
// needs no registry at all once its layers are in the local cache.
const localCacheDockerfile = `FROM base
RUN echo one > /one.txt && echo RAN-ONE
COPY app /app
RUN cat /app/code.bin > /copied.txt && echo RAN-TWO
`

// localCacheEnv is a context with the base image as an OCI layout, and a way to run the
// executor in a pod on it with a persistent cache volume.
type localCacheEnv struct {
	t   *testing.T
	reg *testenv.Registry
	ctx string
}

func newLocalCacheEnv(t *testing.T, reg *testenv.Registry, base string) *localCacheEnv {
	t.Helper()
	ctx := writeContext(t, map[string]string{"Dockerfile": localCacheDockerfile, "app/code.bin": "version 1\n"})
	img, err := registry.Pull(context.Background(), base, registry.WithInsecureAll(true))
	if err != nil {
		t.Fatal(err)
	}
	if err := registry.WriteOCILayout(filepath.Join(ctx, "baseoci"), img, "busybox"); err != nil {
		t.Fatal(err)
	}
	return &localCacheEnv{t: t, reg: reg, ctx: ctx}
}

func (e *localCacheEnv) setCode(content string) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.ctx, "app/code.bin"), []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// build runs a --no-push build writing a tarball and its digest, with cacheDir at /cache.
func (e *localCacheEnv) build(t *testing.T, cacheDir string, extra ...string) testenv.PodResult {
	t.Helper()
	p := registryPod(t, e.ctx, append([]string{"--build-context", "base=oci-layout:///workspace/baseoci:busybox",
		"--no-push", "--tar-path", "/workspace/out.tar", "--digest-file", "/workspace/digest", "--reproducible",
		"--insecure", "--cache=true", "--cache-dir", "/cache", "--cache-copy-layers"}, extra...)...)
	p.Mounts = map[string]string{"/cache": cacheDir}
	return runPodWant(t, p, true)
}

func (e *localCacheEnv) digest() string { return readFile(e.t, filepath.Join(e.ctx, "digest")) }

// wantRuns fails the test unless exactly the RUNs named by their markers ran.
func wantRuns(t *testing.T, res testenv.PodResult, markers ...string) {
	t.Helper()
	for _, m := range []string{"RAN-ONE", "RAN-TWO"} {
		want := strings.Contains(strings.Join(markers, " "), m)
		if strings.Contains(res.Stdout, m) != want {
			t.Errorf("%s ran: %v, want %v\nstdout:\n%s\nstderr:\n%s", m, !want, want, res.Stdout, res.Stderr)
		}
	}
}

// wantSummary fails the test unless the end-of-build summary counts these hits and misses.
func wantSummary(t *testing.T, res testenv.PodResult, local, reg, missed int) {
	t.Helper()
	want := fmt.Sprintf("Cache summary: 3 steps looked up: %d hit locally, %d in the registry, 0 in an oci: layout, %d missed",
		local, reg, missed)
	if !strings.Contains(res.Stderr, want) {
		t.Errorf("the summary does not say %q:\n%s", want, res.Stderr)
	}
}

// TestPodLocalLayerCache: the layers a build makes are kept in --cache-dir and looked up
// before the cache repository. A rebuild with the registry stopped runs no RUN; a build with
// no cache repository at all uses the volume alone; a registry hit is copied to the volume; an
// entry past --cache-ttl misses and says so; --cache-dir-max-size removes the least recently
// used entries; the summary says per step where it hit or why it missed.
func TestPodLocalLayerCache(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	env := newLocalCacheEnv(t, reg, testenv.PushBusybox(t, reg, "base/busybox:latest"))
	cacheDir := t.TempDir()
	cacheRepo := reg.Ref("it/localcache")

	cold := env.build(t, cacheDir, "--cache-repo", cacheRepo)
	wantRuns(t, cold, "RAN-ONE", "RAN-TWO")
	wantSummary(t, cold, 0, 0, 3)
	coldDigest := env.digest()
	if entries, _ := filepath.Glob(filepath.Join(cacheDir, "layercache", "entries", "*.json")); len(entries) != 3 {
		t.Fatalf("--cache-dir holds %d layer cache entries after a cold build, want 3: %v", len(entries), entries)
	}

	top := t
	t.Run("registry stopped: every step hits locally", func(t *testing.T) {
		if err := reg.Kill(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := reg.Restart(top); err != nil {
				t.Fatal(err)
			}
		}()
		res := env.build(t, cacheDir, "--cache-repo", cacheRepo, "--skip-push-permission-check")
		wantRuns(t, res)
		wantSummary(t, res, 3, 0, 0)
		if n := strings.Count(res.Stderr, "cache hit"); n != 3 {
			t.Errorf("%d cache hits logged, want 3:\n%s", n, res.Stderr)
		}
		if d := env.digest(); d != coldDigest {
			t.Errorf("digest %s, the cold build's %s", d, coldDigest)
		}
	})

	t.Run("no cache repository: the volume alone", func(t *testing.T) {
		env.setCode("version 2\n")
		res := env.build(t, cacheDir)
		wantRuns(t, res, "RAN-TWO")
		wantSummary(t, res, 1, 0, 2)
		if !strings.Contains(res.Stderr, "app/code.bin changed (content)") {
			t.Errorf("the COPY miss is not explained from the local cache:\n%s", res.Stderr)
		}
		again := env.build(t, cacheDir)
		wantRuns(t, again)
		wantSummary(t, again, 3, 0, 0)
	})

	t.Run("a registry hit fills the volume", func(t *testing.T) {
		env.setCode("version 1\n")
		fresh := t.TempDir()
		res := env.build(t, fresh, "--cache-repo", cacheRepo)
		wantRuns(t, res)
		wantSummary(t, res, 0, 3, 0)
		if !strings.Contains(res.Stderr, "hit (registry)") {
			t.Errorf("the summary does not name the registry per step:\n%s", res.Stderr)
		}
		again := env.build(t, fresh, "--cache-repo", cacheRepo)
		wantRuns(t, again)
		wantSummary(t, again, 3, 0, 0)
		checkBlobsIntact(t, fresh)
	})

	t.Run("an expired entry misses", func(t *testing.T) {
		time.Sleep(1100 * time.Millisecond) // entries at least a second old, for a ttl of 1s
		res := env.build(t, cacheDir, "--cache-ttl", "1s")
		wantRuns(t, res, "RAN-ONE", "RAN-TWO")
		wantSummary(t, res, 0, 0, 3)
		if !strings.Contains(res.Stderr, "miss (entry expired (age") {
			t.Errorf("the summary does not say the entry expired:\n%s", res.Stderr)
		}
	})

	t.Run("damaged local blobs are not used, then rewritten", func(t *testing.T) {
		cacheDir := t.TempDir()
		env.build(t, cacheDir)
		blobs, _ := filepath.Glob(filepath.Join(cacheDir, "layercache", "blobs", "sha256", "*"))
		if len(blobs) == 0 {
			t.Fatal("no blobs in the layer cache")
		}
		for _, b := range blobs {
			garble(t, b)
		}
		res := env.build(t, cacheDir)
		wantRuns(t, res, "RAN-ONE", "RAN-TWO")
		if !strings.Contains(res.Stderr, "WARN") || !strings.Contains(res.Stderr, "is damaged") {
			t.Errorf("no warning about the damaged entries:\n%s", res.Stderr)
		}
		again := env.build(t, cacheDir)
		wantRuns(t, again)
		wantSummary(t, again, 3, 0, 0)
		if strings.Contains(again.Stderr, "WARN") {
			t.Errorf("warnings once the cache was rewritten:\n%s", again.Stderr)
		}
		checkBlobsIntact(t, cacheDir)
	})
}

// TestPodLocalLayerCachePrune: with --cache-dir-max-size just above what one build's entries
// take, a build after an app change removes the least recently used entries (the old COPY and
// RUN), keeps the RUN it hit, and a build of the old app runs its RUN again.
func TestPodLocalLayerCachePrune(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	env := newLocalCacheEnv(t, reg, testenv.PushBusybox(t, reg, "base/busybox:latest"))
	cacheDir := t.TempDir()
	env.build(t, cacheDir)
	one := dirBytes(t, filepath.Join(cacheDir, "layercache"))
	bound := fmt.Sprint(one + 256)

	env.setCode("version 2\n")
	res := env.build(t, cacheDir, "--cache-dir-max-size", bound)
	wantRuns(t, res, "RAN-TWO")
	if !strings.Contains(res.Stderr, "3 entries kept, 2 removed") {
		t.Errorf("the log does not say 2 entries were removed:\n%s", res.Stderr)
	}
	if n := dirBytes(t, filepath.Join(cacheDir, "layercache")); n > one+256 {
		t.Errorf("the layer cache holds %d bytes after pruning, more than the bound %s", n, bound)
	}
	checkBlobsIntact(t, cacheDir)

	env.setCode("version 1\n")
	old := env.build(t, cacheDir, "--cache-dir-max-size", bound)
	wantRuns(t, old, "RAN-TWO")
	wantSummary(t, old, 1, 0, 2)
}

// TestPodLocalLayerCacheConcurrent: two pods build at once on one cache volume; both succeed,
// every blob is whole, and a third build hits every entry they wrote.
func TestPodLocalLayerCacheConcurrent(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	cacheDir := t.TempDir()
	envs := []*localCacheEnv{newLocalCacheEnv(t, reg, base), newLocalCacheEnv(t, reg, base)}
	t.Run("two at once", func(t *testing.T) {
		for i, env := range envs {
			t.Run(fmt.Sprint("pod", i), func(t *testing.T) {
				t.Parallel()
				env.build(t, cacheDir) // each may hit what the other wrote already; both must succeed
			})
		}
	})
	if t.Failed() {
		return
	}
	checkBlobsIntact(t, cacheDir)
	res := envs[0].build(t, cacheDir)
	wantRuns(t, res)
	wantSummary(t, res, 3, 0, 0)
	if envs[0].digest() != envs[1].digest() {
		t.Errorf("the two builds gave different digests: %s and %s", envs[0].digest(), envs[1].digest())
	}
}

// dirBytes sums the sizes of the files below dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// warmDockerfile is the shape of the bench `warm` workload (../shared/bench/workloads/warm):
// two RUN layers of dependencies (60 MB of random files, 2,000 small files), then the app.
const warmDockerfile = `ARG BASE
FROM ${BASE}
RUN mkdir -p /deps && for i in $(seq 1 20); do head -c 3000000 /dev/urandom > /deps/dep$i.bin; done
RUN for i in $(seq 1 2000); do echo $i > /deps/meta$i.txt; done
COPY app /app
RUN ls -la /app > /app/listing.txt
`

// BenchmarkPodWarmRebuild times the `warm` workload's rebuild after an app-only change, with
// --cache-repo and a --cache-dir volume, in a pod: "local" keeps the layers built on the
// volume (looked up first), "repository" keeps them only in the cache repository (as before
// the local layer cache, --cache-dir-layers=false). The base is Debian, or busybox with -short.
// KILN_BENCH_LOG=DIR keeps each build's log there (warm-MODE-N.log).
func BenchmarkPodWarmRebuild(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("pods need root (mount and pid namespaces, chroot)")
	}
	reg := testenv.StartRegistry(b, testenv.RegistryOptions{})
	var base string
	if testing.Short() {
		base = testenv.PushBusybox(b, reg, "base/busybox:latest")
	} else {
		base = testenv.PushDebian(b, reg, "base/debian:bookworm")
	}
	for _, mode := range []struct{ name, flag string }{{"repository", "--cache-dir-layers=false"}, {"local", "--cache-dir-layers=true"}} {
		b.Run(mode.name, func(b *testing.B) {
			ctx := b.TempDir()
			for p, content := range map[string]string{"Dockerfile": warmDockerfile, "app/code.bin": strings.Repeat("code", 250000)} {
				if err := os.MkdirAll(filepath.Dir(filepath.Join(ctx, p)), 0o755); err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(ctx, p), []byte(content), 0o644); err != nil {
					b.Fatal(err)
				}
			}
			pod := testenv.Pod{Executor: testenv.BuildExecutor(b), Context: ctx,
				Mounts: map[string]string{"/cache": b.TempDir()},
				Args: []string{"--force", "--context", "dir:///workspace", "--log-format", "text", "--build-arg", "BASE=" + base,
					"--destination", reg.Ref("bench/warm-" + mode.name + ":1"), "--insecure", "--insecure-pull", "--cache=true",
					"--cache-repo", reg.Ref("bench/warm-" + mode.name + "-cache"), "--cache-dir", "/cache", mode.flag}}
			build := func(version int) {
				if err := os.WriteFile(filepath.Join(ctx, "app/version.txt"), []byte(fmt.Sprint(version)), 0o644); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				res := testenv.RunPod(b, pod)
				b.StopTimer()
				if res.ExitCode != 0 {
					b.Fatalf("exit code %d:\n%s", res.ExitCode, res.Stderr)
				}
				if d := os.Getenv("KILN_BENCH_LOG"); d != "" {
					p := filepath.Join(d, fmt.Sprintf("warm-%s-%d.log", mode.name, version))
					if err := os.WriteFile(p, []byte(res.Stderr), 0o644); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			build(0) // cold: fills the caches
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				build(i + 1)
			}
		})
	}
}
