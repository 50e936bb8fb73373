package testenv

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// debianCacheDir keeps the debootstrapped rootfs tarball between test runs.
const debianCacheDir = "/var/tmp/kiln-test"

// debianSuite is the Debian release PushDebian bootstraps.
const debianSuite = "bookworm"

// PushDebian pushes a Debian bookworm (debootstrap --variant=minbase) image
// to r as repoTag and returns its reference; Env PATH, Cmd ["bash"]. The
// rootfs tarball is built once from the mirror this machine's apt uses and
// cached in /var/tmp/kiln-test, guarded by a file lock so parallel test
// processes bootstrap it only once. It skips the test if debootstrap is
// missing or the mirror cannot be reached.
func PushDebian(t testing.TB, r *Registry, repoTag string) string {
	t.Helper()
	layer := debianLayer(t)
	return pushLayer(t, r, repoTag, layer, v1.Config{
		Env: []string{DefaultPath},
		Cmd: []string{"bash"},
	}, "testenv: debootstrap --variant=minbase "+debianSuite)
}

// debianLayer returns the cached rootfs tarball as a layer, making it if needed.
func debianLayer(t testing.TB) v1.Layer {
	t.Helper()
	path, digests := debianTarball(t)
	layer, err := layerFromGzipFile(path, digests)
	if err != nil {
		t.Fatalf("testenv: layer from %s: %v", path, err)
	}
	return layer
}

// debianTarball returns the cached rootfs tarball and its digests, making
// them if needed.
func debianTarball(t testing.TB) (string, layerDigests) {
	t.Helper()
	if err := os.MkdirAll(debianCacheDir, 0o755); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	cached := filepath.Join(debianCacheDir, "debian-"+debianSuite+".tar.gz")
	unlock, err := lockFile(cached + ".lock")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	defer unlock()
	if fi, err := os.Stat(cached); err == nil && fi.Size() > 0 {
		d, err := cachedLayerDigests(cached)
		if err != nil {
			t.Fatalf("testenv: cached Debian rootfs: %v", err)
		}
		return cached, d
	}
	debootstrap := requireTool(t, "debootstrap", "debootstrap")
	mirror := aptMirror()
	start := time.Now()
	root := t.TempDir()
	// Its own mount namespace: whatever debootstrap mounts in the target
	// (proc, sys) goes away with it, even when it fails half-way.
	cmd := exec.Command("unshare", "-m", "--propagation", "private",
		debootstrap, "--variant=minbase", debianSuite, root, mirror)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if reason := mirrorUnreachable(mirror); reason != "" {
			t.Skipf("testenv: debootstrap cannot reach the Debian mirror %s (%s): %v", mirror, reason, err)
		}
		t.Fatalf("testenv: debootstrap --variant=minbase %s %s: %v\n%s", debianSuite, mirror, err, tail(out))
	}
	debs, _ := filepath.Glob(filepath.Join(root, "var/cache/apt/archives/*.deb"))
	for _, d := range debs {
		if err := os.Remove(d); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	// Write beside the cache and rename, so readers never see half a file.
	tmp := cached + fmt.Sprintf(".tmp%d", os.Getpid())
	if err := writeTarGz(root, tmp, tarOptions{}); err != nil {
		os.Remove(tmp)
		t.Fatalf("testenv: tar debian rootfs: %v", err)
	}
	os.Remove(cached + ".digests.json")
	if err := os.Rename(tmp, cached); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	d, err := cachedLayerDigests(cached)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Logf("testenv: bootstrapped Debian %s from %s in %s (cached at %s)", debianSuite, mirror, time.Since(start).Round(time.Second), cached)
	return cached, d
}

// aptMirror returns the Debian archive this machine's apt uses (deb822
// "URIs:" or one-line "deb" entries ending in /debian), or deb.debian.org.
func aptMirror() string {
	files := []string{"/etc/apt/sources.list"}
	for _, pat := range []string{"/etc/apt/sources.list.d/*.sources", "/etc/apt/sources.list.d/*.list"} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	for _, f := range files {
		if m := mirrorIn(f); m != "" {
			return m
		}
	}
	return "http://deb.debian.org/debian"
}

// mirrorIn returns the first Debian archive URL named in an apt sources file.
func mirrorIn(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		var urls []string
		switch {
		case strings.HasPrefix(line, "URIs:"):
			urls = strings.Fields(strings.TrimPrefix(line, "URIs:"))
		case strings.HasPrefix(line, "deb "):
			rest := strings.TrimSpace(strings.TrimPrefix(line, "deb "))
			if strings.HasPrefix(rest, "[") {
				if i := strings.Index(rest, "]"); i >= 0 {
					rest = rest[i+1:]
				}
			}
			urls = strings.Fields(rest)[:min(1, len(strings.Fields(rest)))]
		}
		for _, u := range urls {
			if strings.HasSuffix(strings.TrimSuffix(u, "/"), "/debian") {
				return strings.TrimSuffix(u, "/")
			}
		}
	}
	return ""
}

// mirrorUnreachable explains why the mirror's Release file cannot be
// fetched, or returns "" when it can (so a debootstrap failure is a bug).
func mirrorUnreachable(mirror string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, mirror+"/dists/"+debianSuite+"/Release", nil)
	if err != nil {
		return err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.Status
	}
	return ""
}
