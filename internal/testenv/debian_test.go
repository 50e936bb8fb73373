package testenv

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPushDebian(t *testing.T) {
	if testing.Short() {
		t.Skip("slow the first time (debootstrap); skipped in -short mode")
	}
	r := StartRegistry(t, RegistryOptions{Auth: true})
	start := time.Now()
	ref := PushDebian(t, r, "debian:bookworm")
	t.Logf("PushDebian took %s", time.Since(start).Round(time.Millisecond))

	cf := Config(t, r, ref)
	if !slices.Equal(cf.Config.Cmd, []string{"bash"}) || !slices.Equal(cf.Config.Env, []string{DefaultPath}) {
		t.Errorf("Cmd %q Env %q, want [bash] and PATH", cf.Config.Cmd, cf.Config.Env)
	}
	if fi, err := os.Stat(filepath.Join(debianCacheDir, "debian-bookworm.tar.gz")); err != nil || fi.Size() == 0 {
		t.Errorf("rootfs tarball not cached: %v", err)
	}
	// Read it back with skopeo and umoci (outside this process: fast under -race).
	rootfs := UmociUnpack(t, SkopeoCopyToOCI(t, r, ref, "bookworm"), "bookworm")
	if link, err := os.Readlink(filepath.Join(rootfs, "bin")); err != nil || link != "usr/bin" {
		t.Errorf("bin -> %q (%v), want bookworm's merged-/usr symlink", link, err)
	}
	for _, p := range []string{"usr/bin/bash", "usr/bin/apt-get", "usr/bin/dpkg"} {
		if fi, err := os.Stat(filepath.Join(rootfs, p)); err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("%s missing or not executable: %v", p, err)
		}
	}
	if v, err := os.ReadFile(filepath.Join(rootfs, "etc/debian_version")); err != nil || !strings.HasPrefix(string(v), "12.") {
		t.Errorf("etc/debian_version = %q (%v), want bookworm's 12.x", v, err)
	}
	if debs, _ := filepath.Glob(filepath.Join(rootfs, "var/cache/apt/archives/*.deb")); len(debs) > 0 {
		t.Errorf("downloaded .debs left in the image: %v", debs)
	}
}

func TestLayerDigestsSidecar(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "src/a.txt"), []byte("hello"), 0o644)
	gz := filepath.Join(dir, "l.tar.gz")
	if err := writeTarGz(filepath.Join(dir, "src"), gz, tarOptions{}); err != nil {
		t.Fatal(err)
	}
	d, err := cachedLayerDigests(gz)
	if err != nil {
		t.Fatal(err)
	}
	l, err := layerFromGzipFile(gz, d)
	if err != nil {
		t.Fatal(err)
	}
	// The sidecar must agree with what a fresh read of the file computes.
	fresh, err := computeLayerDigests(gz)
	if err != nil {
		t.Fatal(err)
	}
	if d != fresh {
		t.Errorf("sidecar %+v != fresh %+v", d, fresh)
	}
	if _, err := os.Stat(gz + ".digests.json"); err != nil {
		t.Errorf("sidecar not written: %v", err)
	}
	if dig, _ := l.Digest(); dig.String() != d.Digest {
		t.Errorf("layer digest %s, want %s", dig, d.Digest)
	}
}

func TestAptMirror(t *testing.T) {
	dir := t.TempDir()
	deb822 := filepath.Join(dir, "debian.sources")
	writeFile(t, deb822, []byte("Types: deb\n# comment\nURIs: http://mirror.example/debian-security\n\nTypes: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n"), 0o644)
	if got := mirrorIn(deb822); got != "http://mirror.example/debian" {
		t.Errorf("deb822: got %q", got)
	}
	list := filepath.Join(dir, "sources.list")
	writeFile(t, list, []byte("# deb http://old.example/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main\n"), 0o644)
	if got := mirrorIn(list); got != "http://one.example/debian" {
		t.Errorf("one-line: got %q", got)
	}
	if got := mirrorIn(filepath.Join(dir, "missing")); got != "" {
		t.Errorf("missing file: got %q", got)
	}
}
