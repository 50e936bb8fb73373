package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/kilnbuild/kiln/internal/testenv"
)

// corruptCacheDockerfile has two cached RUNs; the first one's entry is damaged by each case.
// Their output lines (RAN-2, RAN-3) show which RUN executed; the log of the instruction itself
// shows the unexpanded $((...)).
const corruptCacheDockerfile = `ARG BASE
FROM ${BASE}
RUN head -c 65536 /dev/urandom > /random.bin && echo RAN-$((1+1))
RUN echo second > /second && echo RAN-$((1+2))
`

// TestFaultCorruptCache damages the cache entry of a RUN in each way storage can: its layer
// blob no longer matches its digest, its manifest is garbage, or (an oci: cache) the layout's
// index.json is garbage; in a registry cache repository (the registry's files on disk) and in
// an oci: layout on the pod's cache volume. The next build treats the entry as a miss with a
// warning, runs the RUN again instead of using it, and succeeds with an image whose every blob
// matches its digest; the build after that hits the rewritten entry.
func TestFaultCorruptCache(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	ctx := writeContext(t, map[string]string{"Dockerfile": corruptCacheDockerfile})

	type target struct {
		name   string
		oci    bool
		break_ func(t *testing.T, c *cacheUnderTest)
	}
	cases := []target{
		{"registry: layer blob does not match its digest", false, func(t *testing.T, c *cacheUnderTest) {
			garble(t, reg.BlobPath(c.entryLayer(t)))
		}},
		{"registry: manifest is garbage", false, func(t *testing.T, c *cacheUnderTest) {
			writeGarbage(t, reg.BlobPath(c.entryManifest(t)))
		}},
		{"oci: layer blob does not match its digest", true, func(t *testing.T, c *cacheUnderTest) {
			garble(t, c.layoutBlob(c.entryLayer(t)))
		}},
		{"oci: manifest is garbage", true, func(t *testing.T, c *cacheUnderTest) {
			writeGarbage(t, c.layoutBlob(c.entryManifest(t)))
		}},
		{"oci: layer blob is missing", true, func(t *testing.T, c *cacheUnderTest) {
			if err := os.Remove(c.layoutBlob(c.entryLayer(t))); err != nil {
				t.Fatal(err)
			}
		}},
		{"oci: index.json is garbage", true, func(t *testing.T, c *cacheUnderTest) {
			writeGarbage(t, filepath.Join(c.dir, "layers", "index.json"))
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &cacheUnderTest{reg: reg, dir: t.TempDir(), repo: reg.Ref("it/corrupt-cache-" + string(rune('a'+i)))}
			dest := reg.Ref("it/corrupt:" + string(rune('a'+i)))
			cacheRepo := c.repo
			if tc.oci {
				cacheRepo = "oci:/cache/layers"
				c.repo = ""
			}
			build := func() testenv.PodResult {
				p := registryPod(t, ctx, "--build-arg", "BASE="+base, "--destination", dest, "--insecure", "--insecure-pull",
					"--cache", "--cache-repo", cacheRepo, "--cache-dir", "/cache", "--cache-dir-layers=false")
				p.Mounts = map[string]string{"/cache": c.dir}
				return runPodWant(t, p, true)
			}
			cold := build()
			if !strings.Contains(cold.Stdout, "RAN-2\n") || !strings.Contains(cold.Stdout, "RAN-3\n") {
				t.Fatalf("the cold build did not run both RUNs:\n%s", cold.Stdout)
			}
			tc.break_(t, c)

			warm := build()
			logWarnings(t, warm.Stderr)
			if !strings.Contains(warm.Stdout, "RAN-2\n") {
				t.Errorf("the damaged entry was used: the first RUN did not run again\n%s\n%s", warm.Stdout, warm.Stderr)
			}
			if !strings.Contains(warm.Stderr, "WARN") || !strings.Contains(warm.Stderr, "cache entry") {
				t.Errorf("no warning about the damaged cache entry:\n%s", warm.Stderr)
			}
			verifyImage(t, reg, dest)

			again := build()
			if strings.Contains(again.Stdout, "RAN-") || strings.Count(again.Stderr, "cache hit") != 2 {
				t.Errorf("the build after the damaged one should hit both rewritten entries:\n%s\n%s", again.Stdout, again.Stderr)
			}
			if strings.Contains(again.Stderr, "WARN") {
				t.Errorf("warnings once the cache was rewritten:\n%s", again.Stderr)
			}
			verifyImage(t, reg, dest)
		})
	}

	t.Run("--cache-dir: a base layer does not match its digest", func(t *testing.T) {
		dir := t.TempDir()
		dest := reg.Ref("it/corrupt-base:1")
		build := func() testenv.PodResult {
			p := registryPod(t, ctx, "--build-arg", "BASE="+base, "--destination", dest, "--insecure", "--insecure-pull",
				"--cache", "--cache-repo", "oci:/cache/layers", "--cache-dir", "/cache", "--cache-run-layers=false")
			p.Mounts = map[string]string{"/cache": dir}
			return runPodWant(t, p, true)
		}
		build()
		blobs, _ := filepath.Glob(filepath.Join(dir, "blobs", "sha256", "*"))
		forms, _ := filepath.Glob(filepath.Join(dir, "diffs", "sha256", "*.zst"))
		if len(blobs) != 1 || len(forms) != 1 {
			t.Fatalf("--cache-dir holds %v and %v, want the base image's one layer and its unpack form", blobs, forms)
		}
		// RUN layers are not cached, so the root is unpacked from the base layer's unpack form:
		// damaged, it is removed and the image unpacked again from the blob.
		garble(t, forms[0])
		res := build()
		logWarnings(t, res.Stderr)
		if !strings.Contains(res.Stderr, "cached unpack form "+strings.Replace(forms[0], dir, "/cache", 1)+" is damaged") {
			t.Errorf("no warning naming the damaged unpack form:\n%s", res.Stderr)
		}
		verifyImage(t, reg, dest)
		checkBlobsIntact(t, dir)
		// Without its form, the root is unpacked from the damaged blob's layer.
		garble(t, blobs[0])
		if err := os.Remove(forms[0]); err != nil {
			t.Fatal(err)
		}
		res = build()
		logWarnings(t, res.Stderr)
		if !strings.Contains(res.Stderr, "cached base layer "+strings.Replace(blobs[0], dir, "/cache", 1)+" is damaged") {
			t.Errorf("no warning naming the damaged blob:\n%s", res.Stderr)
		}
		verifyImage(t, reg, dest)
		checkBlobsIntact(t, dir)
	})
}

// cacheUnderTest finds the entry of the first RUN in a registry cache repository (repo) or in
// the oci: layout at dir/layers.
type cacheUnderTest struct {
	reg  *testenv.Registry
	repo string // "" for the oci: layout
	dir  string // the pod's /cache
}

// entry returns the cache image whose history names the first RUN.
func (c *cacheUnderTest) entry(t *testing.T) v1.Image {
	t.Helper()
	var imgs []v1.Image
	if c.repo == "" {
		idx, err := layout.ImageIndexFromPath(filepath.Join(c.dir, "layers"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range m.Manifests {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			imgs = append(imgs, img)
		}
	} else {
		repo, err := name.NewRepository(c.repo, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		tags, err := remote.List(repo, c.reg.RemoteOptions()...)
		if err != nil {
			t.Fatal(err)
		}
		for _, tag := range tags {
			imgs = append(imgs, pullRef(t, c.reg, c.repo+":"+tag))
		}
	}
	for _, img := range imgs {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if len(cf.History) > 0 && strings.Contains(cf.History[0].CreatedBy, "head -c 65536") {
			return img
		}
	}
	t.Fatalf("no cache entry for the first RUN among %d", len(imgs))
	return nil
}

func (c *cacheUnderTest) entryLayer(t *testing.T) v1.Hash {
	t.Helper()
	layers, err := c.entry(t).Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("cache entry layers: %d, %v", len(layers), err)
	}
	d, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (c *cacheUnderTest) entryManifest(t *testing.T) v1.Hash {
	t.Helper()
	d, err := c.entry(t).Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (c *cacheUnderTest) layoutBlob(d v1.Hash) string {
	return filepath.Join(c.dir, "layers", "blobs", d.Algorithm, d.Hex)
}

// garble flips bytes in the middle of a file, keeping its size.
func garble(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 2; i < len(b)/2+16 && i < len(b); i++ {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeGarbage replaces a file's content with bytes that are not JSON.
func writeGarbage(t *testing.T, path string) {
	t.Helper()
	if json.Valid([]byte("{garbage")) {
		t.Fatal("garbage is JSON")
	}
	if err := os.WriteFile(path, []byte("{garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
}
