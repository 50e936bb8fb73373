package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/klauspost/compress/zstd"
)

// loadPods is how many executor pods run at once.
const loadPods = 10

// testLoadPods runs loadPods executor pods at once, pushing to one repository (a tag each),
// sharing one --cache-dir (a hostPath volume) and one cache repository, with --reproducible:
// every build succeeds, each image's digest is the one a sequential run of the same builds
// (its own cache directory and repository) gives, and every cache entry is whole afterwards:
// each blob in the cache directory matches its digest, no temporary file is left, and each
// image in the cache repository validates (manifest, config and layer digests).
//
// One build runs first, alone, so that the blobs every build shares (the base layers, the
// shared step's layer) are in both repositories before the ten start: Debian's
// docker-registry (distribution 2.8, filesystem storage) rewrites a blob's link file in place
// when two clients upload or mount the same blob into one repository at once, and a manifest
// PUT or blob HEAD that reads it meanwhile fails (400 DIGEST_INVALID/MANIFEST_BLOB_UNKNOWN,
// or 500): plain go-containerregistry pushes fail that way too, about 1 in 20 under this
// load. Still at once: the ten pods' cache directory writes (base blobs, layer cache), their
// own layers and cache entries, and their manifests in one repository.
func testLoadPods(t *testing.T, e *executorCluster) {
	ctx := writeContext(t, map[string]string{"Dockerfile": `ARG BASE
FROM ${BASE}
RUN mkdir -p /shared && echo "the same step in every build" > /shared/file
ARG N
RUN echo "build $N" > /n.txt
`})
	job := func(name, n, cacheDir, cacheRepo string) buildJob {
		return buildJob{name: name, context: ctx, cacheDir: cacheDir,
			args: []string{"--build-arg=BASE=" + e.busybox, "--build-arg=N=" + n,
				"--destination=" + e.reg.Ref("load/app:"+name),
				"--cache=true", "--cache-dir=/cache", "--cache-repo=" + e.reg.Ref(cacheRepo),
				"--reproducible", "--insecure", "--insecure-pull"}}
	}
	jobs := func(prefix, cacheDir, cacheRepo string) []buildJob {
		var out []buildJob
		for i := range loadPods {
			out = append(out, job(fmt.Sprintf("%s-%d", prefix, i), fmt.Sprint(i), cacheDir, cacheRepo))
		}
		return out
	}
	clock := newPhaseClock(t)
	e.runJobs(t, job("prime", "prime", t.TempDir(), "load/cache"))
	clock.phase("one build alone puts the shared blobs in load/app and load/cache")
	sharedDir := t.TempDir()
	together := e.runJobs(t, jobs("together", sharedDir, "load/cache")...)
	clock.phase(fmt.Sprintf("%d pods at once: all succeeded (%s)", loadPods, podRunTimes(together)))
	checkCacheDir(t, sharedDir)
	checkCacheRepo(t, e, "load/cache")

	seqDir := t.TempDir()
	var seq []jobResult
	for _, j := range jobs("seq", seqDir, "load/seqcache") {
		seq = append(seq, e.runJobs(t, j)...)
	}
	clock.phase(fmt.Sprintf("%d pods one after another (%s)", loadPods, podRunTimes(seq)))
	hits, misses := cacheCounts(together)
	seqHits, seqMisses := cacheCounts(seq)
	t.Logf("cache: %d hits, %d misses at once; %d hits, %d misses one after another", hits, misses, seqHits, seqMisses)
	// In the sequential run every build after the first finds the shared step in the cache:
	// equal digests then show that a cached layer and a fresh one are the same.
	if seqHits < loadPods-1 {
		t.Errorf("the sequential run had %d cache hits, want at least %d (the shared step of builds 2..%d)", seqHits, loadPods-1, loadPods)
	}
	for i := range loadPods {
		a := digestOf(t, e.reg, e.reg.Ref(fmt.Sprintf("load/app:together-%d", i)))
		b := digestOf(t, e.reg, e.reg.Ref(fmt.Sprintf("load/app:seq-%d", i)))
		if a == "" || a != b {
			t.Errorf("build %d: digest %q when %d pods ran at once, %q in a sequential run", i, a, loadPods, b)
		}
	}
}

// cacheCounts sums the cache hits and misses the builds' logs report.
func cacheCounts(res []jobResult) (hits, misses int) {
	for _, r := range res {
		hits += strings.Count(r.logs["build"], cacheHitLine)
		misses += strings.Count(r.logs["build"], cacheMissLine)
	}
	return hits, misses
}

// podRunTimes lists how long each pod's build container ran.
func podRunTimes(res []jobResult) string {
	var parts []string
	for _, r := range res {
		parts = append(parts, runTime(r.pod).Round(100*time.Millisecond).String())
	}
	return "build containers ran " + strings.Join(parts, ", ")
}

// checkCacheDir checks every file of a --cache-dir after concurrent writers: each blob or
// manifest stored by digest (.../sha256/HEX: the base image cache's and the layer cache's)
// hashes to HEX, each unpack form (diffs/sha256/HEX.zst) decompresses to a tar hashing to HEX, each JSON file (references, entries, lineages) parses, each layer-cache entry's blob is
// there, and no temporary file of an unfinished write (".tmp-*", "*.part") is left.
func checkCacheDir(t *testing.T, dir string) {
	t.Helper()
	counts := map[string]int{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		parent := filepath.Base(filepath.Dir(p))
		switch {
		case strings.HasPrefix(d.Name(), ".") || strings.HasSuffix(d.Name(), ".part"):
			t.Errorf("temporary file %s left in the shared --cache-dir", rel)
		case parent == "sha256" && strings.HasSuffix(d.Name(), ".zst"): // diffs/sha256/DIFFID.zst: unpack forms
			counts["unpack forms"]++
			if got := formSHA256(t, p); got+".zst" != d.Name() {
				t.Errorf("unpack form %s holds a tar with digest sha256:%s: torn or damaged", rel, got)
			}
		case parent == "sha256": // content-addressed: blobs/sha256/HEX, manifests/sha256/HEX
			counts["blobs"]++
			if got := fileSHA256(t, p); got != d.Name() {
				t.Errorf("cache blob %s hashes to sha256:%s: torn or damaged", rel, got)
			}
		case strings.HasSuffix(d.Name(), ".json"):
			counts["json"]++
			checkCacheJSON(t, dir, p, parent)
		default:
			t.Logf("--cache-dir: %s not checked", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	if counts["blobs"] == 0 {
		t.Errorf("the shared --cache-dir %s holds no blob: the base image was not cached", dir)
	}
	t.Logf("--cache-dir: %d blobs and %d JSON files, all whole", counts["blobs"], counts["json"])
}

// checkCacheJSON checks that a JSON file of the cache directory parses and, for a layer-cache
// entry (entries/KEY.json), that the blob of its layer is in the store's blobs.
func checkCacheJSON(t *testing.T, dir, p, parent string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Layer *struct {
			Digest string `json:"digest"`
		} `json:"layer"`
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Errorf("%s in the shared --cache-dir is not whole JSON: %v", p, err)
		return
	}
	if parent == "entries" && rec.Layer != nil {
		hex, _ := strings.CutPrefix(rec.Layer.Digest, "sha256:")
		blob := filepath.Join(filepath.Dir(filepath.Dir(p)), "blobs", "sha256", hex)
		if _, err := os.Stat(blob); err != nil {
			rel, _ := filepath.Rel(dir, p)
			t.Errorf("cache entry %s names layer %s, whose blob is missing: %v", rel, rec.Layer.Digest, err)
		}
	}
}

func fileSHA256(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkCacheRepo validates every image in the cache repository: manifest, config and each
// layer read in full and checked against their digests.
func checkCacheRepo(t *testing.T, e *executorCluster, repo string) {
	t.Helper()
	r, err := name.NewRepository(e.reg.Ref(repo), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(r, e.reg.RemoteOptions()...)
	if err != nil {
		t.Fatalf("list the tags of cache repository %s: %v", r, err)
	}
	if len(tags) == 0 {
		t.Fatalf("cache repository %s is empty after %d builds with --cache=true", r, loadPods)
	}
	for _, tag := range tags {
		img, err := remote.Image(r.Tag(tag), e.reg.RemoteOptions()...)
		if err != nil {
			t.Errorf("cache entry %s:%s: %v", r, tag, err)
			continue
		}
		if err := imageWhole(img); err != nil {
			t.Errorf("cache entry %s:%s is not whole: %v", r, tag, err)
		}
	}
	t.Logf("cache repository %s: %d entries, all whole: %v", r, len(tags), tags)
}

// imageWhole reads every blob of img: the config against the manifest's digest, each layer
// compressed (go-containerregistry checks a remote blob's digest as it is read) and
// uncompressed against its diffID in the config.
func imageWhole(img v1.Image) error {
	if _, err := img.RawConfigFile(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for i, l := range layers {
		d, _ := l.Digest()
		if err := readAll(l.Compressed); err != nil {
			return fmt.Errorf("layer %d (%s): %w", i+1, d, err)
		}
		want, err := l.DiffID()
		if err != nil {
			return fmt.Errorf("layer %d (%s): %w", i+1, d, err)
		}
		rc, err := l.Uncompressed()
		if err != nil {
			return fmt.Errorf("layer %d (%s): %w", i+1, d, err)
		}
		got, _, err := v1.SHA256(rc)
		rc.Close()
		if err != nil || got != want {
			return fmt.Errorf("layer %d (%s): uncompressed digest %s (%v), config says %s", i+1, d, got, err, want)
		}
	}
	return nil
}

func readAll(open func() (io.ReadCloser, error)) error {
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, rc)
	return err
}

// formSHA256 is the hex SHA-256 of what the zstd file p decompresses to (an unpack form's tar).
func formSHA256(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	defer zr.Close()
	h := sha256.New()
	if _, err := io.Copy(h, zr); err != nil {
		return "unreadable (" + err.Error() + ")"
	}
	return hex.EncodeToString(h.Sum(nil))
}
