package integration

import (
	"archive/tar"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/kilnbuild/kiln/internal/testenv"
)

// warmerEnv names a prebuilt warmer binary (make build writes bin/warmer).
const warmerEnv = "KILN_WARMER"

var warmerBuild struct {
	once sync.Once
	path string
	err  error
}

// warmerBinary returns KILN_WARMER, or a static build of ../cmd/warmer made once per process.
func warmerBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(warmerEnv); p != "" {
		return p
	}
	warmerBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "kiln-warmer-")
		if err != nil {
			warmerBuild.err = err
			return
		}
		warmerBuild.path = filepath.Join(dir, "warmer")
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = "/usr/local/go/bin/go"
		}
		cmd := exec.Command(goTool, "build", "-o", warmerBuild.path, "./cmd/warmer")
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			warmerBuild.err = err
			t.Logf("go build ./cmd/warmer:\n%s", out)
		}
	})
	if warmerBuild.err != nil {
		t.Fatalf("building the warmer: %v", warmerBuild.err)
	}
	return warmerBuild.path
}

// runWarmer runs the warmer on this machine (it only writes --cache-dir) and returns its exit
// code and log.
func runWarmer(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(warmerBinary(t), append([]string{"--log-format", "text"}, args...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "DOCKER_CONFIG=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatalf("running the warmer: %v", err)
	}
	return 0, string(out)
}

const warmerDockerfile = `ARG BASE
ARG TOOL
FROM ${TOOL} AS tool
FROM scratch AS nothing
FROM ${BASE}
COPY --from=tool /hello.txt /hello.txt
RUN echo built offline > /proof && cat /hello.txt
`

// TestPodWarmerFillsWhatTheExecutorReadsOffline warms a Dockerfile's two FROM images (ARGs
// given with --build-arg) into a cache volume, checks that a second warm skips them, --force
// downloads them again and an unknown image fails by name, then stops the registry and builds
// the Dockerfile in a pod from the volume alone (--no-push --tar-path).
func TestPodWarmerFillsWhatTheExecutorReadsOffline(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:warm")
	toolDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(toolDir, "hello.txt"), []byte("hello from the tool image\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tool := testenv.PushImageFromDir(t, reg, "base/tool:warm", toolDir, v1.Config{})
	ctx := writeContext(t, map[string]string{"Dockerfile": warmerDockerfile})
	cacheDir := t.TempDir()
	warm := func(args ...string) (int, string) {
		t.Helper()
		return runWarmer(t, append([]string{"--cache-dir", cacheDir, "--insecure-pull"}, args...)...)
	}
	fromDockerfile := []string{"--dockerfile", filepath.Join(ctx, "Dockerfile"), "--build-arg", "BASE=" + base, "--build-arg", "TOOL=" + tool}

	code, log := warm(fromDockerfile...)
	if code != 0 || !strings.Contains(log, "Cached "+base) || !strings.Contains(log, "Cached "+tool) {
		t.Fatalf("warming the Dockerfile's images: exit %d, want both cached:\n%s", code, log)
	}
	if strings.Contains(log, "scratch") {
		t.Errorf("the warmer tried FROM scratch:\n%s", log)
	}
	code, log = warm(fromDockerfile...)
	if code != 0 || strings.Count(log, "already cached as") != 2 || strings.Contains(log, "  layer ") {
		t.Errorf("second warm: exit %d, want both skipped without a download:\n%s", code, log)
	}
	code, log = warm("--image", base, "--force")
	if code != 0 || !strings.Contains(log, "Cached "+base) || !strings.Contains(log, "  layer 1/1") {
		t.Errorf("--force: exit %d, want a new download:\n%s", code, log)
	}
	missing := reg.Ref("nope/missing:1")
	code, log = warm("--image", missing, "--image", tool)
	if code == 0 || !strings.Contains(log, missing) || !strings.Contains(log, "registry "+reg.Addr) {
		t.Errorf("unknown image: exit %d, want non-zero naming %s and its registry:\n%s", code, missing, log)
	}

	if err := reg.Kill(); err != nil {
		t.Fatal(err)
	}
	p := registryPod(t, ctx, "--build-arg", "BASE="+base, "--build-arg", "TOOL="+tool, "--insecure-pull",
		"--no-push", "--tar-path", "/workspace/image.tar",
		"--cache=true", "--cache-dir", "/cache", "--cache-repo", "oci:/cache/layers")
	p.Mounts = map[string]string{"/cache": cacheDir}
	res := runPodWant(t, p, true)
	if n := strings.Count(res.Stderr, "using the cached resolution from"); n != 2 {
		t.Errorf("%d warnings about cached resolutions, want 2 (one per FROM image):\n%s", n, res.Stderr)
	}
	if !strings.Contains(res.Stdout+res.Stderr, "hello from the tool image") {
		t.Errorf("the RUN did not see the file copied from the tool image:\n%s\n%s", res.Stdout, res.Stderr)
	}
	if got := fileInTarball(t, filepath.Join(ctx, "image.tar"), "proof"); got != "built offline\n" {
		t.Errorf("/proof in the built image = %q", got)
	}
}

// fileInTarball returns the content of path in the flattened filesystem of the image tarball.
func fileInTarball(t *testing.T, tarPath, path string) string {
	t.Helper()
	img, err := tarball.ImageFromPath(tarPath, nil)
	if err != nil {
		t.Fatalf("reading %s: %v", tarPath, err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in the image in %s: %v", path, tarPath, err)
		}
		if strings.TrimPrefix(h.Name, "/") == path {
			b, _ := io.ReadAll(tr)
			return string(b)
		}
	}
}
