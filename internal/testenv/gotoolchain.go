package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// GoToolchainImage returns a Go toolchain image made from this machine, the stand-in for
// golang:<version> (no public registry is reachable here). Two layers, as golang's image has
// a userland and a GOROOT: busybox (PushBusybox's root plus the host's CA bundle at
// /etc/ssl/certs/ca-certificates.crt and /go/bin), and the host's GOROOT at /usr/local/go. The
// config is golang's: PATH with /go/bin and /usr/local/go/bin, GOPATH=/go, GOLANG_VERSION,
// GOTOOLCHAIN=local, WorkingDir /go, Cmd /bin/sh. There is no C compiler: build with
// CGO_ENABLED=0.
//
// The GOROOT layer (about 100 MB gzipped) is made once per Go installation with tar(1) and
// gzip(1) and cached in /var/tmp/kiln-test with its digests, under a file lock, so later
// calls (and parallel test processes) cost nothing but the upload.
func GoToolchainImage(t testing.TB) v1.Image {
	t.Helper()
	goroot, version := hostGoroot(t)
	base := goBaseLayer(t)
	gorootFile, d := cachedGorootLayer(t, goroot, version)
	gorootLayer, err := layerFromGzipFile(gorootFile, d)
	if err != nil {
		t.Fatalf("testenv: layer from %s: %v", gorootFile, err)
	}
	img, err := mutate.Append(empty.Image,
		mutate.Addendum{Layer: base, History: v1.History{CreatedBy: "testenv: busybox-static userland"}},
		mutate.Addendum{Layer: gorootLayer, History: v1.History{CreatedBy: "testenv: the host's " + version + " at /usr/local/go"}})
	if err != nil {
		t.Fatalf("testenv: assemble the Go image: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("testenv: read config: %v", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = v1.Config{
		Env: []string{
			"PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"GOLANG_VERSION=" + strings.TrimPrefix(version, "go"), "GOPATH=/go", "GOTOOLCHAIN=local",
		},
		WorkingDir: "/go",
		Cmd:        []string{"/bin/sh"},
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatalf("testenv: set config: %v", err)
	}
	return img
}

// PushGoToolchain pushes GoToolchainImage to r as repoTag and returns its reference.
func PushGoToolchain(t testing.TB, r *Registry, repoTag string) string {
	t.Helper()
	ref := r.Ref(repoTag)
	if err := pushImage(r, ref, GoToolchainImage(t)); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return ref
}

// hostGoroot returns the GOROOT and version (go1.26.0) of the go command on this machine.
func hostGoroot(t testing.TB) (string, string) {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go"
	}
	out, err := exec.Command(goTool, "env", "GOROOT", "GOVERSION").Output()
	if err != nil {
		t.Skipf("testenv: the Go image is made from this machine's Go, and `%s env` failed: %v", goTool, err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		t.Fatalf("testenv: go env GOROOT GOVERSION printed %q", out)
	}
	return f[0], f[1]
}

// goBaseLayer is the Go image's userland: the busybox root with the CA bundle and /go/bin.
func goBaseLayer(t testing.TB) v1.Layer {
	t.Helper()
	root := t.TempDir()
	makeBusyboxRoot(t, root)
	for _, d := range []string{"etc/ssl/certs", "go/bin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	if certs, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		writeFile(t, filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"), certs, 0o644)
	}
	out := filepath.Join(t.TempDir(), "base.tar.gz")
	if err := writeTarGz(root, out, tarOptions{mtime: busyboxMtime()}); err != nil {
		t.Fatalf("testenv: tar the Go image's userland: %v", err)
	}
	l, err := tarball.LayerFromFile(out)
	if err != nil {
		t.Fatalf("testenv: layer from %s: %v", out, err)
	}
	return l
}

// cachedGorootLayer returns the cached gzipped tar of goroot at usr/local/go and its digests,
// making them if needed. The cache key covers the installation's path, version and go binary.
func cachedGorootLayer(t testing.TB, goroot, version string) (string, layerDigests) {
	t.Helper()
	fi, err := os.Stat(filepath.Join(goroot, "bin", "go"))
	if err != nil {
		t.Fatalf("testenv: GOROOT %s: %v", goroot, err)
	}
	key := sha256.Sum256(fmt.Appendf(nil, "%s\n%s\n%d\n%d\n", goroot, version, fi.Size(), fi.ModTime().UnixNano()))
	if err := os.MkdirAll(debianCacheDir, 0o755); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	cached := filepath.Join(debianCacheDir, fmt.Sprintf("goroot-%s-%s.tar.gz", version, hex.EncodeToString(key[:6])))
	unlock, err := lockFile(cached + ".lock")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	defer unlock()
	if _, err := os.Stat(cached); err == nil {
		d, err := cachedLayerDigests(cached)
		if err != nil {
			t.Fatalf("testenv: cached GOROOT layer: %v", err)
		}
		return cached, d
	}
	start := time.Now()
	d, err := writeGorootLayer(goroot, cached)
	if err != nil {
		t.Fatalf("testenv: GOROOT layer of %s: %v", goroot, err)
	}
	t.Logf("testenv: tarred GOROOT %s (%s) in %s, cached at %s", goroot, version, time.Since(start).Round(time.Second), cached)
	return cached, d
}

// writeGorootLayer stages goroot at usr/local/go beside out, tars and gzips it to out (written
// under a temporary name, then renamed) and stores its digests in the sidecar file.
func writeGorootLayer(goroot, out string) (layerDigests, error) {
	stage, err := os.MkdirTemp(filepath.Dir(out), ".goroot-stage-")
	if err != nil {
		return layerDigests{}, err
	}
	defer os.RemoveAll(stage)
	if err := os.MkdirAll(filepath.Join(stage, "usr/local"), 0o755); err != nil {
		return layerDigests{}, err
	}
	// The layer's "./", usr and usr/local entries become the image's /, /usr, /usr/local.
	for _, d := range []string{".", "usr", "usr/local"} {
		if err := os.Chmod(filepath.Join(stage, d), 0o755); err != nil {
			return layerDigests{}, err
		}
	}
	if b, err := exec.Command("cp", "-a", goroot, filepath.Join(stage, "usr/local/go")).CombinedOutput(); err != nil {
		return layerDigests{}, fmt.Errorf("cp -a %s: %v: %s", goroot, err, b)
	}
	tmp := out + fmt.Sprintf(".tmp%d", os.Getpid())
	defer os.Remove(tmp)
	d, err := tarGzipWithTools(stage, tmp)
	if err != nil {
		return layerDigests{}, err
	}
	b, _ := json.Marshal(d)
	if err := os.WriteFile(out+".digests.json", b, 0o644); err != nil {
		return layerDigests{}, err
	}
	return d, os.Rename(tmp, out)
}

// tarGzipWithTools writes the tree under dir to out with `tar | gzip -1`, computing the
// layer's digests on the way: compressing hundreds of MB in a race-enabled test binary takes
// minutes, gzip(1) takes seconds.
func tarGzipWithTools(dir, out string) (layerDigests, error) {
	f, err := os.Create(out)
	if err != nil {
		return layerDigests{}, err
	}
	defer f.Close()
	tarCmd := exec.Command("tar", "--numeric-owner", "--sort=name", "-C", dir, "-cf", "-", ".")
	gz := exec.Command("gzip", "-1", "-n")
	tarOut, err := tarCmd.StdoutPipe()
	if err != nil {
		return layerDigests{}, err
	}
	gzIn, err := gz.StdinPipe()
	if err != nil {
		return layerDigests{}, err
	}
	digest, counter := sha256.New(), &countingWriter{}
	var tarErr, gzErr strings.Builder
	gz.Stdout, tarCmd.Stderr, gz.Stderr = io.MultiWriter(f, digest, counter), &tarErr, &gzErr
	if err := tarCmd.Start(); err != nil {
		return layerDigests{}, err
	}
	if err := gz.Start(); err != nil {
		_ = tarCmd.Process.Kill()
		_ = tarCmd.Wait()
		return layerDigests{}, err
	}
	diffID := sha256.New()
	_, copyErr := io.Copy(io.MultiWriter(gzIn, diffID), tarOut)
	gzIn.Close()
	if err := tarCmd.Wait(); err != nil {
		return layerDigests{}, fmt.Errorf("tar -C %s: %v: %s", dir, err, tarErr.String())
	}
	if err := gz.Wait(); err != nil {
		return layerDigests{}, fmt.Errorf("gzip: %v: %s", err, gzErr.String())
	}
	if copyErr != nil {
		return layerDigests{}, copyErr
	}
	if err := f.Sync(); err != nil {
		return layerDigests{}, err
	}
	return layerDigests{
		Digest: "sha256:" + hex.EncodeToString(digest.Sum(nil)),
		DiffID: "sha256:" + hex.EncodeToString(diffID.Sum(nil)),
		Size:   counter.n,
	}, nil
}
