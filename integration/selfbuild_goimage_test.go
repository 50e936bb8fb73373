package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/kilnbuild/kiln/internal/testenv"
)

// pushGoImage pushes a Go toolchain image made from this machine (the stand-in for
// golang:1.26-bookworm, which is not reachable here) as repoTag and returns its reference.
// testenv.GoToolchainImage gives its first two layers, as golang's image has them: a busybox
// userland with /etc/ssl/certs and the host's GOROOT at /usr/local/go (cached between runs).
// A third layer is a module cache at /go/pkg/mod pre-seeded with what `go mod download` and the
// executor's build need (what a CI cache volume would hold), tarred and gzipped by tar(1) and
// gzip(1): in a test binary built with -race, compressing it in-process takes minutes.
func pushGoImage(t *testing.T, reg *testenv.Registry, repo, repoTag string) string {
	t.Helper()
	work := t.TempDir()
	dir := filepath.Join(work, "modcache")
	mkdirs(t, dir, ".")
	seedModules(t, repo, filepath.Join(dir, "go/pkg/mod"))
	modcache := gzipLayer(t, dir, filepath.Join(work, "modcache.tar.gz"))
	if t.Failed() {
		t.FailNow()
	}
	img, err := mutate.Append(testenv.GoToolchainImage(t),
		mutate.Addendum{Layer: modcache, History: v1.History{CreatedBy: "selfbuild: modcache"}})
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config = goImageConfig(t)
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
	hostCmd(t, repo, env, hostGo(), "list", "-deps", "./cmd/executor", "./cmd/pipeline")
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
