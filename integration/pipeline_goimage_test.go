package integration

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/kilnbuild/kiln/internal/testenv"
)

// goStageDockerfile is the Go toolchain stage image: busybox plus this machine's GOROOT, the
// stand-in for golang:<version> (no public registry is reachable here), as scripts/demo.sh
// builds it.
const goStageDockerfile = `ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY go /usr/local/go
ENV PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin GOTOOLCHAIN=local
`

// goImageBuild memoizes the Go stage image: the executor builds it once per test process, and
// the image tarball it writes is kept in memory (about 80 MB) for every test to push to its
// own registry. In memory, so nothing is left behind when the process ends.
type goImageBuild struct {
	once sync.Once
	tar  []byte
	err  error
}

var theGoImage goImageBuild

// goStageImage pushes the Go stage image to reg as demo/golang:local and returns its
// reference. The first call builds it with the executor as a build pod (testenv.RunPod) from
// a context holding a hard-linked copy of GOROOT, FROM base (a busybox in reg).
func goStageImage(t *testing.T, reg *testenv.Registry, base string) string {
	t.Helper()
	ref := reg.Ref("demo/golang:local")
	theGoImage.once.Do(func() {
		// A t.Fatal inside Do ends it too: leave an error for later callers.
		theGoImage.err = errors.New("the build failed in " + t.Name())
		theGoImage.tar = buildGoStageImage(t, base, ref)
		theGoImage.err = nil
	})
	if theGoImage.err != nil {
		t.Fatalf("Go stage image: %v", theGoImage.err)
	}
	data := theGoImage.tar
	img, err := tarball.Image(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }, nil)
	if err != nil {
		t.Fatalf("Go stage image tarball: %v", err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := remote.Write(tag, img, reg.RemoteOptions()...); err != nil {
		t.Fatalf("push the Go stage image to %s: %v", ref, err)
	}
	t.Logf("pushed the Go stage image to %s in %s", ref, time.Since(start).Round(time.Millisecond))
	return ref
}

// buildGoStageImage runs the executor as a build pod on the Go image's context and returns the
// image tarball it writes.
func buildGoStageImage(t *testing.T, base, ref string) []byte {
	t.Helper()
	goroot := hostGOROOT(t)
	ctx := t.TempDir()
	// Hard links: the context costs no copy of GOROOT's 270 MB (a copy where links fail).
	if out, err := exec.Command("cp", "-al", goroot, filepath.Join(ctx, "go")).CombinedOutput(); err != nil {
		t.Logf("cp -al %s failed (%v: %s); copying instead", goroot, err, out)
		os.RemoveAll(filepath.Join(ctx, "go"))
		if out, err := exec.Command("cp", "-a", goroot, filepath.Join(ctx, "go")).CombinedOutput(); err != nil {
			t.Fatalf("cp -a %s: %v: %s", goroot, err, out)
		}
	}
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(goStageDockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	start := time.Now()
	res := testenv.RunPod(t, testenv.Pod{
		Executor: testenv.BuildExecutor(t),
		Context:  ctx,
		Mounts:   map[string]string{"/out": out},
		Args: []string{"--force", "--context", "dir:///workspace", "--dockerfile", "Dockerfile",
			"--build-arg", "BASE_IMAGE=" + base, "--destination", ref,
			"--no-push", "--tar-path", "/out/golang.tar", "--log-format", "text"},
	})
	if res.ExitCode != 0 {
		t.Fatalf("the executor could not build the Go stage image: exit code %d\n%s", res.ExitCode, res.Stderr)
	}
	t.Logf("the executor built the Go stage image (%s) as a build pod in %s", goroot, time.Since(start).Round(10*time.Millisecond))
	b, err := os.ReadFile(filepath.Join(out, "golang.tar"))
	if err != nil {
		t.Fatalf("the executor wrote no image tarball: %v", err)
	}
	return b
}

// hostGOROOT is the GOROOT of this machine's go command, which the stage image carries.
func hostGOROOT(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(goTool(), "env", "GOROOT").Output()
	if err != nil {
		t.Skipf("the Go stage image is made of this machine's Go, and `%s env GOROOT` failed: %v", goTool(), err)
	}
	return strings.TrimSpace(string(out))
}
