package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/kilnbuild/kiln/internal/testenv"
)

// pushGoImage pushes a Go toolchain image made from this machine (the stand-in for
// golang:1.26-bookworm, which is not reachable here) as repoTag and returns its reference.
// Three layers, as golang's image has several: a busybox userland with /etc/ssl/certs, the
// host's GOROOT at /usr/local/go, and a module cache at /go/pkg/mod pre-seeded with what
// `go mod download` and the executor's build need (what a CI cache volume would hold).
// The layers are tarred and gzipped by tar(1) and gzip(1), concurrently: in a test binary
// built with -race, compressing ~800 MB in-process takes minutes.
func pushGoImage(t *testing.T, reg *testenv.Registry, repo, repoTag string) string {
	t.Helper()
	work := t.TempDir()
	roots := map[string]func(string){
		"base": func(dir string) { baseRoot(t, dir) },
		"goroot": func(dir string) {
			mkdirs(t, dir, "usr/local")
			hostCmd(t, "", nil, "cp", "-a", hostGoEnv(t, repo, "GOROOT"), filepath.Join(dir, "usr/local/go"))
		},
		"modcache": func(dir string) { seedModules(t, repo, filepath.Join(dir, "go/pkg/mod")) },
	}
	order := []string{"base", "goroot", "modcache"}
	layers := make([]v1.Layer, len(order))
	var wg sync.WaitGroup
	for i, n := range order {
		dir := filepath.Join(work, n)
		mkdirs(t, dir, ".")
		roots[n](dir)
		wg.Go(func() { layers[i] = gzipLayer(t, dir, filepath.Join(work, n+".tar.gz")) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	adds := make([]mutate.Addendum, len(layers))
	for i, l := range layers {
		adds[i] = mutate.Addendum{Layer: l, History: v1.History{CreatedBy: "selfbuild: " + order[i]}}
	}
	img, err := mutate.Append(empty.Image, adds...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = "linux", runtime.GOARCH, goImageConfig(t)
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	ref := reg.Ref(repoTag)
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img, reg.RemoteOptions()...); err != nil {
		t.Fatalf("push the Go image to %s: %v", ref, err)
	}
	return ref
}

// baseRoot lays out the Go image's userland under dir: busybox in /bin, root's passwd and
// group entries, /tmp, /root and the host's CA bundle.
func baseRoot(t *testing.T, dir string) {
	t.Helper()
	mkdirs(t, dir, "bin", "etc/ssl/certs", "root", "tmp", "go/bin")
	if err := os.Chmod(filepath.Join(dir, "tmp"), os.ModeSticky|0o777); err != nil {
		t.Fatal(err)
	}
	addBusybox(t, filepath.Join(dir, "bin"))
	hostCmd(t, "", nil, "cp", "/etc/ssl/certs/ca-certificates.crt", filepath.Join(dir, "etc/ssl/certs/"))
	writeSmallFile(t, filepath.Join(dir, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")
	writeSmallFile(t, filepath.Join(dir, "etc/group"), "root:x:0:\n")
}

// goImageConfig is the config of the Go image: golang's PATH and GOPATH, no VCS stamping (the
// context has no .git), the local toolchain only, and this machine's module proxy.
func goImageConfig(t *testing.T) v1.Config {
	t.Helper()
	return v1.Config{
		Env: []string{
			"PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"GOPATH=/go", "GOFLAGS=-buildvcs=false", "GOTOOLCHAIN=local",
			"GOPROXY=" + hostGoEnv(t, "", "GOPROXY"),
		},
		WorkingDir: "/go",
		Cmd:        []string{"/bin/sh"},
	}
}

// seedModules fills modCache with the modules `go mod download` fetches and the executor's
// build imports, read from this machine's module cache (falling back to its proxy).
func seedModules(t *testing.T, repo, modCache string) {
	t.Helper()
	proxy := "file://" + filepath.Join(hostGoEnv(t, repo, "GOMODCACHE"), "cache/download") + "," + hostGoEnv(t, repo, "GOPROXY")
	env := []string{"GOMODCACHE=" + modCache, "GOPROXY=" + proxy, "GOFLAGS=-mod=readonly", "GOTOOLCHAIN=local"}
	hostCmd(t, repo, env, hostGo(), "mod", "download")
	hostCmd(t, repo, env, hostGo(), "list", "-deps", "./cmd/executor")
}

// mkdirs creates each path (0755) under dir.
func mkdirs(t *testing.T, dir string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
		// MkdirAll leaves an existing directory's mode; the layer's "./" entry must be 0755.
		if err := os.Chmod(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// gzipLayer writes the tree under dir to out with `tar | gzip -1`, hashing the tar stream
// (diffID) and the gzip stream (digest) on the way, and returns the layer.
func gzipLayer(t *testing.T, dir, out string) v1.Layer {
	f, err := os.Create(out)
	if err != nil {
		t.Error(err)
		return nil
	}
	defer f.Close()
	tarCmd := exec.Command("tar", "--numeric-owner", "--sort=name", "-C", dir, "-cf", "-", ".")
	gz := exec.Command("gzip", "-1", "-n")
	tarOut, err := tarCmd.StdoutPipe()
	if err != nil {
		t.Error(err)
		return nil
	}
	gzIn, err := gz.StdinPipe()
	if err != nil {
		t.Error(err)
		return nil
	}
	digest := sha256.New()
	counter := &byteCounter{}
	gz.Stdout = io.MultiWriter(f, digest, counter)
	tarCmd.Stderr, gz.Stderr = os.Stderr, os.Stderr
	if err := tarCmd.Start(); err != nil {
		t.Error(err)
		return nil
	}
	if err := gz.Start(); err != nil {
		t.Error(err)
		return nil
	}
	diffID := sha256.New()
	_, copyErr := io.Copy(io.MultiWriter(gzIn, diffID), tarOut)
	gzIn.Close()
	tarErr, gzErr := tarCmd.Wait(), gz.Wait()
	for _, err := range []error{copyErr, tarErr, gzErr} {
		if err != nil {
			t.Errorf("tar %s | gzip: %v", dir, err)
			return nil
		}
	}
	l, err := partial.CompressedToLayer(&gzFileLayer{path: out, size: counter.n,
		digest: "sha256:" + hex.EncodeToString(digest.Sum(nil)), diffID: "sha256:" + hex.EncodeToString(diffID.Sum(nil))})
	if err != nil {
		t.Error(err)
	}
	return l
}

// byteCounter counts what is written through it.
type byteCounter struct{ n int64 }

func (c *byteCounter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// gzFileLayer is a gzipped layer file whose digests were computed while it was written.
type gzFileLayer struct {
	path           string
	size           int64
	digest, diffID string
}

func (l *gzFileLayer) Digest() (v1.Hash, error)           { return v1.NewHash(l.digest) }
func (l *gzFileLayer) DiffID() (v1.Hash, error)           { return v1.NewHash(l.diffID) }
func (l *gzFileLayer) Compressed() (io.ReadCloser, error) { return os.Open(l.path) }
func (l *gzFileLayer) Size() (int64, error)               { return l.size, nil }
func (l *gzFileLayer) MediaType() (types.MediaType, error) {
	return types.DockerLayer, nil
}
