package buildstage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/testenv"
	"github.com/kilnbuild/kiln/pipeline/buildstage"
	"github.com/kilnbuild/kiln/pipeline/spec"
	"github.com/kilnbuild/kiln/registry"
	"github.com/kilnbuild/kiln/sandbox"
)

// logger records log lines.
type logger struct {
	mu    sync.Mutex
	lines []string
}

func (l *logger) Infof(format string, args ...any) { l.add("INFO " + fmt.Sprintf(format, args...)) }
func (l *logger) Warnf(format string, args ...any) { l.add("WARN " + fmt.Sprintf(format, args...)) }
func (l *logger) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
}
func (l *logger) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// env is a registry with a busybox image, and a workspace.
type env struct {
	reg       *testenv.Registry
	image     string
	workspace string
	log       *logger
	out       bytes.Buffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if err := sandbox.Supported(); err != nil {
		t.Skipf("the sandbox cannot run here: %v", err)
	}
	e := &env{reg: testenv.StartRegistry(t, testenv.RegistryOptions{}), workspace: t.TempDir(), log: &logger{}}
	e.image = testenv.PushBusybox(t, e.reg, "stage/busybox:1")
	return e
}

// options are the stage options of e; the work dir is a fresh temp dir.
func (e *env) options(t *testing.T) buildstage.Options {
	return buildstage.Options{
		Workspace: e.workspace,
		WorkDir:   t.TempDir(),
		Pull:      []registry.Option{registry.WithInsecure(e.reg.Addr)},
		Stdout:    &e.out,
		Stderr:    &e.out,
		Log:       e.log,
	}
}

func shell(image, line string) *spec.Build {
	return &spec.Build{Image: image, Command: spec.Command{Shell: line}}
}

func TestBuildWritesOutputIntoTheWorkspace(t *testing.T) {
	e := newEnv(t)
	if err := os.WriteFile(filepath.Join(e.workspace, "src.txt"), []byte("source\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := shell(e.image, "mkdir -p out && cp src.txt out/app && echo compiled")
	b.Output = "out"
	o := e.options(t)
	if err := buildstage.Run(context.Background(), b, o); err != nil {
		t.Fatalf("%v\n%s", err, e.out.String())
	}
	if got, err := os.ReadFile(filepath.Join(e.workspace, "out/app")); err != nil || string(got) != "source\n" {
		t.Fatalf("host workspace out/app = %q, %v", got, err)
	}
	if e.out.String() != "compiled\n" {
		t.Errorf("command output %q", e.out.String())
	}
	log := e.log.String()
	for _, want := range []string{
		"pulling the stage image " + e.image, "pulled " + e.image + " (sha256:", "unpacking 1 layer (",
		"layer 1/1 sha256:", "unpacked 1 layer, ", `running "mkdir -p out && cp src.txt out/app && echo compiled" in /workspace`,
		"the command succeeded in", "output out holds 1 entry",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if entries, _ := os.ReadDir(o.WorkDir); len(entries) != 0 {
		t.Errorf("the stage root was left in the work dir: %v", entries)
	}
}

func TestBuildExitCodeAndLastLines(t *testing.T) {
	e := newEnv(t)
	b := shell(e.image, `i=1; while [ $i -le 30 ]; do echo "line $i"; i=$((i+1)); done; echo "it broke" >&2; exit 3`)
	o := e.options(t)
	o.Pipeline = &spec.Pipeline{File: "kiln-pipeline.yaml", Lines: map[string]int{"build.command": 9}}
	err := buildstage.Run(context.Background(), b, o)
	var exit *sandbox.ExitError
	if !errors.As(err, &exit) || exit.Code != 3 {
		t.Fatalf("want a *sandbox.ExitError with code 3, got %v", err)
	}
	var ce *buildstage.CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("want a *CommandError, got %T", err)
	}
	if len(ce.Tail) != 20 || ce.Tail[0] != "line 12" || ce.Tail[19] != "it broke" {
		t.Fatalf("tail %q", ce.Tail)
	}
	msg := err.Error()
	for _, want := range []string{"kiln-pipeline.yaml:9: build.command", "exited with code 3", "line 30", "it broke"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "line 11\n") {
		t.Errorf("error shows more than the last lines:\n%s", msg)
	}
}

func TestBuildOutputMissingOrEmpty(t *testing.T) {
	e := newEnv(t)
	p := &spec.Pipeline{File: "/app/kiln-pipeline.yaml", Lines: map[string]int{"build.output": 7}}
	for _, c := range []struct{ command, output, want string }{
		{"true", "dist", "did not create"},
		{"mkdir -p empty", "empty", "is empty"},
		{"touch zero", "zero", "is empty"},
		{"ln -sf /etc outside", "outside", "out of the workspace"},
	} {
		b := shell(e.image, c.command)
		b.Output = c.output
		o := e.options(t)
		o.Pipeline = p
		err := buildstage.Run(context.Background(), b, o)
		if err == nil || !strings.Contains(err.Error(), "/app/kiln-pipeline.yaml:7: build.output") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("output %q after %q: want an error naming build.output at line 7 with %q, got %v", c.output, c.command, c.want, err)
		}
	}
}

func TestBuildEnvAndWorkdir(t *testing.T) {
	e := newEnv(t)
	b := shell(e.image, `echo "$GREETING $TARGET $PATH" > /workspace/env.txt; pwd > /workspace/pwd.txt`)
	b.Env = map[string]string{"GREETING": "hello", "TARGET": "linux"}
	b.Workdir = "/workspace/sub/dir"
	if err := buildstage.Run(context.Background(), b, e.options(t)); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"env.txt": "hello linux " + strings.TrimPrefix(testenv.DefaultPath, "PATH=") + "\n", // the image's PATH is kept
		"pwd.txt": "/workspace/sub/dir\n",
	}
	for f, w := range want {
		if got, err := os.ReadFile(filepath.Join(e.workspace, f)); err != nil || string(got) != w {
			t.Errorf("%s = %q, %v; want %q", f, got, err, w)
		}
	}
	if fi, err := os.Stat(filepath.Join(e.workspace, "sub/dir")); err != nil || !fi.IsDir() {
		t.Errorf("the working directory was not created in the workspace: %v", err)
	}
	// Without workdir the command starts in /workspace.
	if err := buildstage.Run(context.Background(), shell(e.image, "pwd > default.txt"), e.options(t)); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(e.workspace, "default.txt")); string(got) != "/workspace\n" {
		t.Errorf("default working directory %q", got)
	}
}

func TestBuildLeavesTheHostRootAlone(t *testing.T) {
	e := newEnv(t)
	marker := "/kiln-buildstage-host-must-not-see-" + filepath.Base(t.TempDir())
	if err := buildstage.Run(context.Background(), shell(e.image, "echo x > "+marker+" && echo x > /etc/passwd"), e.options(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err == nil {
		os.Remove(marker)
		t.Fatalf("the build command wrote %s on the host", marker)
	}
	if b, err := os.ReadFile("/etc/passwd"); err != nil || string(b) == "x\n" {
		t.Fatalf("the build command changed the host's /etc/passwd")
	}
}

func TestBuildCancelKillsTheCommand(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := shell(e.image, "touch /workspace/started; sleep 4545; touch /workspace/survived")
	done := make(chan error, 1)
	go func() { done <- buildstage.Run(ctx, b, e.options(t)) }()
	started := filepath.Join(e.workspace, "started")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(started); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the stage ended before the command started: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the command never started")
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.workspace, "survived")); err == nil {
		t.Fatal("the command went on after cancel")
	}
	for _, pid := range pidsWith("sleep\x004545") {
		t.Errorf("sleep still running as pid %s", pid)
	}
}

// pidsWith returns the pids whose command line contains pattern.
func pidsWith(pattern string) []string {
	entries, _ := os.ReadDir("/proc")
	var pids []string
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && strings.Contains(string(b), pattern) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

func TestBuildImageNotFoundNamesImageAndRegistry(t *testing.T) {
	e := newEnv(t)
	ref := e.reg.Ref("stage/missing:9")
	o := e.options(t)
	o.Pipeline = &spec.Pipeline{File: "kiln-pipeline.yaml", Lines: map[string]int{"build.image": 4}}
	err := buildstage.Run(context.Background(), shell(ref, "true"), o)
	if err == nil {
		t.Fatal("a missing stage image was accepted")
	}
	for _, want := range []string{"kiln-pipeline.yaml:4: build.image", ref, "registry " + e.reg.Addr, "MANIFEST_UNKNOWN"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestBuildRegistryAuthFromDockerConfig(t *testing.T) {
	if err := sandbox.Supported(); err != nil {
		t.Skipf("the sandbox cannot run here: %v", err)
	}
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Auth: true})
	image := testenv.PushBusybox(t, reg, "private/busybox:1")
	ws := t.TempDir()
	o := buildstage.Options{Workspace: ws, Pull: []registry.Option{registry.WithInsecure(reg.Addr)}}
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials there
	err := buildstage.Run(context.Background(), shell(image, "true"), o)
	if err == nil || !strings.Contains(err.Error(), "registry "+reg.Addr) || !strings.Contains(strings.ToLower(err.Error()), "unauthorized") {
		t.Fatalf("want an unauthorized error naming the registry, got %v", err)
	}
	// The executor's config.json: from Options.DockerConfig, or from $DOCKER_CONFIG.
	dir := filepath.Dir(reg.DockerConfig(t))
	o.DockerConfig = dir
	if err := buildstage.Run(context.Background(), shell(image, "touch a"), o); err != nil {
		t.Fatalf("with DockerConfig: %v", err)
	}
	o.DockerConfig = ""
	t.Setenv("DOCKER_CONFIG", dir)
	if err := buildstage.Run(context.Background(), shell(image, "touch b"), o); err != nil {
		t.Fatalf("with $DOCKER_CONFIG: %v", err)
	}
}

func TestBuildRefusesWorkDirInsideWorkspace(t *testing.T) {
	e := newEnv(t)
	o := e.options(t)
	o.WorkDir = filepath.Join(e.workspace, ".kiln")
	err := buildstage.Run(context.Background(), shell(e.image, "true"), o)
	if err == nil || !strings.Contains(err.Error(), "inside the workspace") {
		t.Fatalf("want an error about the work dir, got %v", err)
	}
}

func TestBuildCompilesAGoProgram(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the standard library in a Go toolchain image (a minute); skipped with -short")
	}
	e := newEnv(t)
	goImage := testenv.PushGoToolchain(t, e.reg, "stage/golang:local")
	files := map[string]string{
		"go.mod":  "module example.com/hello\n\ngo 1.22\n",
		"main.go": "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"Hello, World! v1.0\") }\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(e.workspace, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := &spec.Build{
		Image:   goImage,
		Command: spec.Command{Exec: []string{"go", "build", "-o", "out/hello", "."}},
		Output:  "out",
		Env: map[string]string{"CGO_ENABLED": "0", "GOCACHE": "/tmp/gocache", "GOPATH": "/tmp/gopath",
			"GOPROXY": "off", "GOFLAGS": "-buildvcs=false"},
	}
	if err := buildstage.Run(context.Background(), b, e.options(t)); err != nil {
		t.Fatalf("%v\n%s", err, e.out.String())
	}
	t.Logf("stage log:\n%s", e.log)
	out, err := exec.Command(filepath.Join(e.workspace, "out/hello")).CombinedOutput()
	if err != nil || string(out) != "Hello, World! v1.0\n" {
		t.Fatalf("the compiled program: %q, %v", out, err)
	}
}
