package integration

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/internal/testenv"
)

// selfKanikoDir is the executor's own directory in the self-build pod. It must not be /kaniko:
// the executor never writes its own directory, and the image it builds lives in /kaniko.
const selfKanikoDir = "/kiln-self"

// TestPodBuildsItsOwnImage builds deploy/Dockerfile's debug target with the executor run as a
// build pod (the repository root as context, bases made locally: no public registry is
// reachable), checks the image is laid out as Kaniko's executor:debug, then runs the executor
// it built, from the unpacked image, as a build pod of its own. The build pod lacks
// CAP_SYS_ADMIN, as in a cluster: its RUN --mount=type=cache lines are emulated.
func TestPodBuildsItsOwnImage(t *testing.T) {
	if testing.Short() {
		t.Skip("self-build compiles the executor inside a pod (minutes); skipped with -short")
	}
	requireRoot(t)
	repo := repoRoot(t)
	start := time.Now()
	phase := func(what string) {
		t.Logf("selfbuild: %s done after %s", what, time.Since(start).Round(time.Second))
	}
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	busybox := testenv.PushBusybox(t, reg, "base/busybox:musl")
	goImage := pushGoImage(t, reg, "base/golang:local")
	cacheVolume := seedCacheVolume(t, repo)
	phase("base images")

	dest := reg.Ref("kiln/executor:debug")
	res := testenv.RunPod(t, testenv.Pod{
		Executor: testenv.BuildExecutor(t),
		Context:  repo,
		Mounts:   map[string]string{"/cache": cacheVolume},
		DropCaps: []string{"sys_admin"},
		Timeout:  20 * time.Minute,
		Args: []string{"--force", "--context", "dir:///workspace", "--dockerfile", "deploy/Dockerfile",
			"--target", "debug", "--kaniko-dir", selfKanikoDir,
			"--build-arg", "GO_IMAGE=" + goImage, "--build-arg", "BUSYBOX_IMAGE=" + busybox,
			"--destination", dest, "--insecure", "--insecure-pull", "--log-format", "text"},
	})
	if res.ExitCode != 0 {
		t.Fatalf("self-build exited %d", res.ExitCode)
	}
	if log := res.Stdout + res.Stderr; !strings.Contains(log, "this pod cannot create a mount namespace") ||
		!strings.Contains(log, "cache /go/pkg/mod: the cache directory itself") {
		t.Errorf("the self-build without CAP_SYS_ADMIN does not say its cache mounts are emulated:\n%s", log)
	}
	phase("self-build in a pod")

	checkExecutorConfig(t, testenv.Config(t, reg, dest))
	files := testenv.ExportImage(t, reg, dest)
	checkExecutorFiles(t, files, imageBinaries)
	rootfs := testenv.UmociUnpack(t, testenv.SkopeoCopyToOCI(t, reg, dest, "debug"), "debug")
	checkStatic(t, filepath.Join(rootfs, "kaniko/executor"))
	checkStatic(t, filepath.Join(rootfs, "kaniko/pipeline"))
	checkStatic(t, filepath.Join(rootfs, "kaniko/warmer"))
	phase("image checks")

	// The executor from the image builds and pushes an image of its own.
	ctx := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + busybox + "\nRUN echo built by the self-built executor > /proof\n",
	})
	built := reg.Ref("it/selfbuilt:1")
	res = testenv.RunPod(t, testenv.Pod{
		Executor: filepath.Join(rootfs, "kaniko/executor"),
		Context:  ctx,
		Args: []string{"--force", "--context", "dir:///workspace", "--destination", built,
			"--insecure", "--insecure-pull", "--log-format", "text"},
	})
	if res.ExitCode != 0 {
		t.Fatalf("the self-built executor exited %d", res.ExitCode)
	}
	if got := string(file(t, testenv.ExportImage(t, reg, built), "proof").Content); got != "built by the self-built executor\n" {
		t.Errorf("/proof in the image the self-built executor pushed = %q", got)
	}
	phase("build with the self-built executor")
}

// repoRoot returns the module root: the self-build's context.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "deploy/Dockerfile")); err != nil {
		t.Fatalf("no deploy/Dockerfile in the repository root %s: %v", root, err)
	}
	return root
}

// checkExecutorConfig checks the config matches Kaniko's executor:debug image.
func checkExecutorConfig(t *testing.T, cf *v1.ConfigFile) {
	t.Helper()
	c := cf.Config
	for _, want := range []string{"HOME=/root", "USER=root", "PATH=/usr/local/bin:/kaniko:/busybox",
		"SSL_CERT_DIR=/kaniko/ssl/certs", "DOCKER_CONFIG=/kaniko/.docker/"} {
		if !slices.Contains(c.Env, want) {
			t.Errorf("config Env %q lacks %s", c.Env, want)
		}
	}
	if c.WorkingDir != "/workspace" {
		t.Errorf("config WorkingDir = %q, want /workspace", c.WorkingDir)
	}
	if !slices.Equal(c.Entrypoint, []string{"/kaniko/executor"}) {
		t.Errorf("config Entrypoint = %q, want [/kaniko/executor]", c.Entrypoint)
	}
	if _, ok := c.Volumes["/busybox"]; !ok {
		t.Errorf("config Volumes = %v, want /busybox", c.Volumes)
	}
	if cf.OS != "linux" {
		t.Errorf("config os = %q, want linux", cf.OS)
	}
}

// imageBinaries are the programs deploy/Dockerfile puts in the executor image.
var imageBinaries = []string{"kaniko/executor", "kaniko/pipeline", "kaniko/warmer"}

// checkExecutorFiles checks the image holds the programs bins, certificates and busybox, and
// nothing of the build stage.
func checkExecutorFiles(t *testing.T, files map[string]testenv.FileEntry, bins []string) {
	t.Helper()
	for _, bin := range bins {
		exe := file(t, files, bin)
		if exe.Type != '0' || exe.Mode&0o111 == 0 || exe.Size < 1<<20 {
			t.Errorf("/%s: type %c mode %o size %d, want an executable file", bin, exe.Type, exe.Mode, exe.Size)
		}
	}
	certs := file(t, files, "kaniko/ssl/certs/ca-certificates.crt")
	if !strings.Contains(string(certs.Content), "BEGIN CERTIFICATE") {
		t.Errorf("/kaniko/ssl/certs/ca-certificates.crt holds no certificate (%d bytes)", certs.Size)
	}
	if d := file(t, files, "kaniko/.docker"); d.Type != '5' {
		t.Errorf("/kaniko/.docker has type %c, want a directory", d.Type)
	}
	if sh := file(t, files, "busybox/sh"); sh.Type != '2' && sh.Type != '1' && sh.Type != '0' {
		t.Errorf("/busybox/sh has type %c, want busybox (a link or the binary)", sh.Type)
	}
	file(t, files, "busybox/busybox")
	if sh := file(t, files, "bin/sh"); sh.Type != '2' || sh.Linkname != "/busybox/sh" {
		t.Errorf("/bin/sh = type %c -> %q, want a symlink to /busybox/sh", sh.Type, sh.Linkname)
	}
	absent(t, files, "usr/local/go", "src", "out", "go", "etc/passwd")
}

// checkStatic fails unless path is an ELF executable with no interpreter and no shared
// libraries: the image has no libc.
func checkStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s is not an ELF binary: %v", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a program interpreter: it is dynamically linked", path)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v", path, libs)
	}
}

// hostGo returns the go command running these tests.
func hostGo() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// hostGoEnv returns `go env NAME` run in dir.
func hostGoEnv(t *testing.T, dir, name string) string {
	t.Helper()
	return strings.TrimSpace(hostCmd(t, dir, nil, hostGo(), "env", name))
}

// hostCmd runs a host command in dir with env added, failing the test with its output on error.
func hostCmd(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	return string(out)
}
