package integration

import (
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/internal/testenv"
)

// pushGoImage pushes a Go toolchain image made from this machine (the stand-in for
// golang:1.26-bookworm, which is not reachable here) as repoTag and returns its reference.
// testenv.GoToolchainImage gives its layers, as golang's image has them: a busybox userland
// with /etc/ssl/certs and the host's GOROOT at /usr/local/go (cached between runs). Its
// GOPROXY is off: the build's modules come from its cache mount (see seedCacheVolume).
func pushGoImage(t *testing.T, reg *testenv.Registry, repoTag string) string {
	t.Helper()
	img := testenv.GoToolchainImage(t)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config = goImageConfig()
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
// context has no .git), the local toolchain only, and no module proxy, so that a build which
// did not get its modules from its cache mount fails.
func goImageConfig() v1.Config {
	return v1.Config{
		Env: []string{
			"PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"GOPATH=/go", "GOFLAGS=-buildvcs=false", "GOTOOLCHAIN=local", "GOPROXY=off",
		},
		WorkingDir: "/go",
		Cmd:        []string{"/bin/sh"},
	}
}

// seedCacheVolume returns a cache volume (a --cache-dir) whose cache mount for /go/pkg/mod,
// the module cache deploy/Dockerfile's RUNs mount, holds what `go mod download` and the
// executor's build need: what a CI system's cache volume holds after an earlier build.
func seedCacheVolume(t *testing.T, repo string) string {
	t.Helper()
	dir := t.TempDir()
	seedModules(t, repo, builder.CacheMountDir(filepath.Join(dir, "mounts"), "/go/pkg/mod"))
	return dir
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
