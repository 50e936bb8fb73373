package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/testenv"
)

// testenvEpoch is the fixed mtime of the files the fault tests put into layers.
var testenvEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

const mib = 1 << 20

// TestFaultDiskFull runs out of space at each place a build writes: the root while a base
// layer is unpacked, the work dir while a RUN is snapshotted and while a COPY's layer is
// written, the image outputs, and the two caches (--cache-dir and an oci: cache repo). Each
// build that cannot go on fails with an error naming the step and the path; a cache that
// cannot be written only warns; nothing is left half-written; and once space is freed, the
// next build on the same file system works.
func TestFaultDiskFull(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	// A base image whose second layer (8 MiB of random data) does not fit.
	bigBase := pushWithLayer(t, reg, base, "base/big:1", tarLayer(t, map[string][]byte{"big.bin": randomData(1, 8*mib)}))

	t.Run("unpacking the base image", func(t *testing.T) {
		small := testenv.MountSmallFS(t, 64*mib)
		root := filepath.Join(small.Dir, "root")
		work := t.TempDir()
		ctx := writeContext(t, map[string]string{"Dockerfile": "FROM " + bigBase + "\nRUN echo unpacked > /ok\n"})
		small.Fill(t, 4*mib)
		r := runDirectory(t, ctx, root, work, "--no-push", "--insecure-pull")
		r.mustFail(t, "Dockerfile:1: FROM "+bigBase, "unpacking layer 2/2", filepath.Join(root, "big.bin"), "no space left on device")

		small.Unfill(t)
		runDirectory(t, ctx, root, work, "--no-push", "--insecure-pull").mustSucceed(t)
		if b, err := os.ReadFile(filepath.Join(root, "ok")); err != nil || string(b) != "unpacked\n" {
			t.Errorf("/ok after the second build: %q %v", b, err)
		}
	})

	t.Run("snapshotting a RUN", func(t *testing.T) {
		small := testenv.MountSmallFS(t, 64*mib)
		work := filepath.Join(small.Dir, "work")
		ctx := writeContext(t, map[string]string{"Dockerfile": "FROM " + base +
			"\nRUN head -c 12582912 /dev/urandom > /random.bin\n"})
		small.Fill(t, 6*mib)
		r := runDirectory(t, ctx, filepath.Join(t.TempDir(), "root"), work, "--no-push", "--insecure-pull")
		r.mustFail(t, "RUN head -c 12582912", filepath.Join(work, "layers"), "no space left on device")
		noLayerFiles(t, work)

		small.Unfill(t)
		runDirectory(t, ctx, filepath.Join(t.TempDir(), "root"), work, "--no-push", "--insecure-pull").mustSucceed(t)
	})

	t.Run("writing a COPY layer", func(t *testing.T) {
		small := testenv.MountSmallFS(t, 64*mib)
		work := filepath.Join(small.Dir, "work")
		ctx := writeContext(t, map[string]string{"Dockerfile": "FROM " + base + "\nCOPY data.bin /data.bin\n",
			"data.bin": string(randomData(2, 12*mib))})
		small.Fill(t, 6*mib)
		r := runDirectory(t, ctx, filepath.Join(t.TempDir(), "root"), work, "--no-push", "--insecure-pull")
		r.mustFail(t, "COPY data.bin /data.bin", filepath.Join(work, "layers"), "no space left on device")
		noLayerFiles(t, work)

		small.Unfill(t)
		runDirectory(t, ctx, filepath.Join(t.TempDir(), "root"), work, "--no-push", "--insecure-pull").mustSucceed(t)
	})

	t.Run("writing the image outputs", func(t *testing.T) {
		small := testenv.MountSmallFS(t, 64*mib)
		ctx := writeContext(t, map[string]string{"Dockerfile": "FROM " + base + "\nCOPY data.bin /data.bin\n",
			"data.bin": string(randomData(3, 12*mib))})
		tarPath := filepath.Join(small.Dir, "out", "image.tar")
		layoutPath := filepath.Join(small.Dir, "layout")
		build := func(flag, path string) dirResult {
			return runDirectory(t, ctx, filepath.Join(t.TempDir(), "root"), t.TempDir(), "--no-push", "--insecure-pull",
				flag, path, "--destination", reg.Ref("it/out:1"))
		}
		small.Fill(t, 6*mib)
		build("--tar-path", tarPath).mustFail(t, "--tar-path "+tarPath, "no space left on device")
		if left, _ := filepath.Glob(filepath.Join(filepath.Dir(tarPath), "*")); len(left) > 0 {
			t.Errorf("a failed --tar-path left %v", left)
		}
		build("--oci-layout-path", layoutPath).mustFail(t, "--oci-layout-path "+layoutPath, "no space left on device")
		checkBlobsIntact(t, layoutPath)

		small.Unfill(t)
		build("--tar-path", tarPath).mustSucceed(t)
		build("--oci-layout-path", layoutPath).mustSucceed(t)
		testenv.SkopeoInspectArchive(t, tarPath)
		testenv.SkopeoInspectOCI(t, layoutPath)
		checkBlobsIntact(t, layoutPath)
	})

	t.Run("writing the base image cache", func(t *testing.T) {
		small := testenv.MountSmallFS(t, 64*mib)
		cacheDir := filepath.Join(small.Dir, "cache")
		ctx := writeContext(t, map[string]string{"Dockerfile": "FROM " + bigBase + "\nRUN cat /big.bin | wc -c > /size\n"})
		build := func() dirResult {
			return runDirectory(t, ctx, filepath.Join(t.TempDir(), "root"), t.TempDir(), "--no-push", "--insecure-pull",
				"--cache", "--cache-dir", cacheDir, "--cache-dir-layers=false", "--cache-repo", "oci:"+filepath.Join(t.TempDir(), "layers"))
		}
		small.Fill(t, 4*mib)
		r := build()
		r.mustSucceed(t) // a cache that cannot be written never fails a build
		logWarnings(t, r.log)
		if !strings.Contains(r.log, cacheDir) || !strings.Contains(r.log, "no space left on device") {
			t.Errorf("no warning naming %s and the full disk:\n%s", cacheDir, r.log)
		}
		checkBlobsIntact(t, cacheDir)

		small.Unfill(t)
		build().mustSucceed(t)
		checkBlobsIntact(t, cacheDir)
		blobs, _ := filepath.Glob(filepath.Join(cacheDir, "blobs", "sha256", "*"))
		if len(blobs) != 2 {
			t.Errorf("--cache-dir holds %d blobs after a build with space, want the base's 2: %v", len(blobs), blobs)
		}
		build().mustSucceed(t) // read from the cache
	})

	t.Run("writing an oci: layer cache", func(t *testing.T) {
		small := testenv.MountSmallFS(t, 64*mib)
		cacheDir := filepath.Join(small.Dir, "layers")
		ctx := writeContext(t, map[string]string{"Dockerfile": "FROM " + base +
			"\nRUN head -c 8388608 /dev/urandom > /random.bin && echo RAN-$((1+1))\nRUN echo small > /small && echo RAN-$((1+2))\n"})
		build := func() dirResult {
			return runDirectory(t, ctx, filepath.Join(t.TempDir(), "root"), t.TempDir(), "--no-push", "--insecure-pull",
				"--cache", "--cache-repo", "oci:"+cacheDir)
		}
		small.Fill(t, 4*mib)
		r := build()
		r.mustSucceed(t)
		logWarnings(t, r.log)
		if !strings.Contains(r.log, "writing cache entry") || !strings.Contains(r.log, cacheDir) ||
			!strings.Contains(r.log, "no space left on device") {
			t.Errorf("no warning naming the cache entry, %s and the full disk:\n%s", cacheDir, r.log)
		}
		checkBlobsIntact(t, cacheDir)
		// Still full: whatever the failed writes left must not be taken for an entry.
		r = build()
		r.mustSucceed(t)
		if !strings.Contains(r.log, "RAN-2\n") {
			t.Errorf("the RUN whose cache write failed hit the cache:\n%s", r.log)
		}
		checkBlobsIntact(t, cacheDir)

		small.Unfill(t)
		r = build()
		r.mustSucceed(t)
		checkBlobsIntact(t, cacheDir)
		r = build()
		r.mustSucceed(t)
		if n := strings.Count(r.log, "cache hit"); n != 2 || strings.Contains(r.log, "RAN-2\n") || strings.Contains(r.log, "RAN-3\n") {
			t.Errorf("after space was freed, the next two builds should fill and then hit the cache (%d hits):\n%s", n, r.log)
		}
	})

	t.Run("a full volume in a build pod", func(t *testing.T) {
		// The pod's work dir (/kaniko/layers) and its cache volume (/cache) on one full disk.
		small := testenv.MountSmallFS(t, 64*mib)
		for _, d := range []string{"layers", "cache"} {
			if err := os.Mkdir(filepath.Join(small.Dir, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		ctx := writeContext(t, map[string]string{"Dockerfile": "FROM " + bigBase + "\nCOPY data.bin /data.bin\n",
			"data.bin": string(randomData(4, 12*mib))})
		dest := reg.Ref("it/full-volume:1")
		pod := registryPod(t, ctx, "--destination", dest, "--insecure", "--insecure-pull", "--cache", "--cache-dir", "/cache",
			"--cache-repo", reg.Ref("it/full-volume-cache"))
		pod.Mounts = map[string]string{"/kaniko/layers": filepath.Join(small.Dir, "layers"), "/cache": filepath.Join(small.Dir, "cache")}
		small.Fill(t, 6*mib)
		res := runPodWant(t, pod, false)
		for _, want := range []string{"Dockerfile:2", "COPY data.bin /data.bin", "/kaniko/layers/layer-", "no space left on device",
			"caching base layer", "/cache"} {
			if !strings.Contains(res.Stderr, want) {
				t.Errorf("the log does not say %q:\n%s", want, res.Stderr)
			}
		}
		logWarnings(t, res.Stderr)
		t.Logf("the user sees: %s", lastLine(res.Stderr))
		notPushed(t, reg, dest)
		checkBlobsIntact(t, small.Dir)

		small.Unfill(t)
		runPodWant(t, pod, true)
		verifyImage(t, reg, dest)
		checkBlobsIntact(t, small.Dir)
	})
}

// lastLine is the last non-empty line of a log.
func lastLine(log string) string {
	lines := strings.Split(strings.TrimSpace(log), "\n")
	return lines[len(lines)-1]
}

// noLayerFiles fails the test when a failed build left layer files in its work dir.
func noLayerFiles(t *testing.T, work string) {
	t.Helper()
	left, _ := filepath.Glob(filepath.Join(work, "layers", "*"))
	if len(left) > 0 {
		t.Errorf("the failed build left layer files in %s: %v", work, left)
	}
}
