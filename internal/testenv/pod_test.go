package testenv

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// probeReport mirrors testdata/podprobe's output.
type probeReport struct {
	PID         int               `json:"pid"`
	Cwd         string            `json:"cwd"`
	Args        []string          `json:"args"`
	Env         []string          `json:"env"`
	Root        []string          `json:"root"`
	ProcPIDs    []int             `json:"proc_pids"`
	Files       map[string]string `json:"files"`
	MountPoints []string          `json:"mount_points"`
	Stdin       string            `json:"stdin"`
	Errors      []string          `json:"errors"`
}

// buildProbe builds testdata/podprobe (static) once per test.
func buildProbe(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "podprobe")
	if err := goBuild(".", "./testdata/podprobe", out); err != nil {
		t.Fatal(err)
	}
	return out
}

func decodeProbe(t *testing.T, res PodResult) probeReport {
	t.Helper()
	var rep probeReport
	if err := json.Unmarshal([]byte(res.Stdout), &rep); err != nil {
		t.Fatalf("probe output: %v\nstdout: %s\nstderr: %s", err, res.Stdout, res.Stderr)
	}
	return rep
}

func TestRunPodSandbox(t *testing.T) {
	probe := buildProbe(t)
	ctx := t.TempDir()
	writeFile(t, filepath.Join(ctx, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	cache := t.TempDir()
	dockerCfg := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, dockerCfg, []byte(`{"auths":{}}`), 0o600)
	extraFile := filepath.Join(t.TempDir(), "extra-ca.crt")
	writeFile(t, extraFile, []byte("pretend CA\n"), 0o644)

	var root string
	t.Run("run", func(t *testing.T) {
		res := RunPod(t, Pod{
			Executor:     probe,
			Context:      ctx,
			DockerConfig: dockerCfg,
			Args: []string{"read=/workspace/Dockerfile", "read=/kaniko/.docker/config.json", "read=/etc/hostname",
				"read=/kaniko/ssl/certs/extra.crt", "read=/etc/hosts", "write=/workspace/out.txt",
				"write=/cache/c.txt", "write=/tmp/left.txt", "arg with 'quotes' and $HOME"},
			Env:    []string{"KILN_TEST=1", "HOME=/home/override"},
			Mounts: map[string]string{"/cache": cache, "/kaniko/ssl/certs/extra.crt": extraFile},
		})
		if res.ExitCode != 0 {
			t.Fatalf("exit %d, stderr %s", res.ExitCode, res.Stderr)
		}
		if !strings.Contains(res.Stderr, "podprobe done") {
			t.Errorf("stderr not captured: %q", res.Stderr)
		}
		rep := decodeProbe(t, res)
		if len(rep.Errors) > 0 {
			t.Errorf("probe errors: %v", rep.Errors)
		}
		if rep.PID != 1 {
			t.Errorf("executor pid = %d, want 1 (own pid namespace)", rep.PID)
		}
		if !slices.Equal(rep.ProcPIDs, []int{1}) {
			t.Errorf("/proc shows pids %v, want only [1]", rep.ProcPIDs)
		}
		if rep.Cwd != "/workspace" {
			t.Errorf("cwd = %q, want /workspace", rep.Cwd)
		}
		if got := rep.Args[len(rep.Args)-1]; got != "arg with 'quotes' and $HOME" {
			t.Errorf("argument mangled: %q", got)
		}
		wantRoot := []string{"cache", "dev", "etc", "kaniko", "proc", "root", "sys", "tmp", "workspace"}
		if !slices.Equal(rep.Root, wantRoot) {
			t.Errorf("/ lists %v, want %v (host files must not be visible)", rep.Root, wantRoot)
		}
		if got := rep.Files["/workspace/Dockerfile"]; got != "FROM scratch\n" {
			t.Errorf("context file = %q", got)
		}
		if got := rep.Files["/kaniko/.docker/config.json"]; got != `{"auths":{}}` {
			t.Errorf("docker config = %q", got)
		}
		if got := rep.Files["/kaniko/ssl/certs/extra.crt"]; got != "pretend CA\n" {
			t.Errorf("extra mount = %q", got)
		}
		if got := rep.Files["/etc/hostname"]; !strings.HasPrefix(got, "ERROR") {
			t.Errorf("host /etc/hostname visible in the pod: %q", got)
		}
		hosts, _ := os.ReadFile("/etc/hosts")
		if got := rep.Files["/etc/hosts"]; got != string(hosts) {
			t.Errorf("/etc/hosts = %q, want the host's", got)
		}
		wantEnv := []string{"PATH=/usr/local/bin:/kaniko", "HOME=/home/override", "USER=root",
			"SSL_CERT_DIR=/kaniko/ssl/certs", "DOCKER_CONFIG=/kaniko/.docker/", "KILN_TEST=1"}
		for _, e := range wantEnv {
			if !slices.Contains(rep.Env, e) {
				t.Errorf("env %v lacks %s", rep.Env, e)
			}
		}
		if slices.Contains(rep.Env, "HOME=/root") {
			t.Errorf("Pod.Env did not override HOME: %v", rep.Env)
		}
		for _, mp := range []string{"/", "/proc", "/dev", "/sys", "/workspace", "/etc/hosts", "/etc/resolv.conf", "/cache", "/kaniko/ssl/certs/extra.crt"} {
			if !slices.Contains(rep.MountPoints, mp) {
				t.Errorf("mount points %v lack %s", rep.MountPoints, mp)
			}
		}
		for _, p := range []string{"/workspace/out.txt", "/cache/c.txt"} {
			host := filepath.Join(ctx, "out.txt")
			if p == "/cache/c.txt" {
				host = filepath.Join(cache, "c.txt")
			}
			if _, err := os.Stat(host); err != nil {
				t.Errorf("write to %s did not reach the host volume: %v", p, err)
			}
		}
		if b, err := os.ReadFile(filepath.Join(res.Root, "tmp/left.txt")); err != nil || len(b) == 0 {
			t.Errorf("file the executor left in /tmp not kept in Root: %v", err)
		}
		if _, err := os.Stat(filepath.Join(res.Root, "kaniko/executor")); err != nil {
			t.Errorf("executor not at /kaniko/executor: %v", err)
		}
		if pids := processesIn(t, res.Root); len(pids) > 0 {
			t.Errorf("pod processes %v still running after RunPod returned", pids)
		}
		if m, err := mountsUnder(res.Root); err != nil || len(m) != 0 {
			t.Errorf("pod mounts visible on the host after it ended: %v %v", m, err)
		}
		root = res.Root
	})
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("pod root %s not removed on cleanup: %v", root, err)
	}
	if m, err := mountsUnder(filepath.Dir(root)); err != nil || len(m) != 0 {
		t.Errorf("mounts left after cleanup: %v %v", m, err)
	}
}

func TestRunPodExitCodeAndStdin(t *testing.T) {
	probe := buildProbe(t)
	res := RunPod(t, Pod{Executor: probe, Context: t.TempDir(), Args: []string{"exit=3", "stdin"}, Stdin: strings.NewReader("hello pod")})
	if res.ExitCode != 3 {
		t.Errorf("exit code = %d, want 3", res.ExitCode)
	}
	if rep := decodeProbe(t, res); rep.Stdin != "hello pod" {
		t.Errorf("stdin = %q", rep.Stdin)
	}
}

func TestRunPodTimeoutKillsPod(t *testing.T) {
	probe := buildProbe(t)
	// A test double for t, so the expected timeout error does not fail us.
	ft := &recordingTB{TB: t}
	start := time.Now()
	res := RunPod(ft, Pod{Executor: probe, Args: []string{"sleep=30s"}, Timeout: time.Second})
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("pod ran %s past its 1s timeout", d)
	}
	if res.ExitCode != 128+9 {
		t.Errorf("killed pod exit code = %d, want 137 (SIGKILL)", res.ExitCode)
	}
	if !strings.Contains(ft.errors(), "timeout") {
		t.Errorf("timeout not reported as a test error: %q", ft.errors())
	}
	if pids := processesIn(t, res.Root); len(pids) > 0 {
		t.Errorf("pod processes %v still running after the timeout", pids)
	}
}

// processesIn lists the processes whose root directory is root.
func processesIn(t *testing.T, root string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, e := range ents {
		if r, err := os.Readlink("/proc/" + e.Name() + "/root"); err == nil && r == root {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// recordingTB records Errorf calls instead of failing the test.
type recordingTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func (r *recordingTB) Fatal(args ...any) {
	r.Errorf("%s", fmt.Sprint(args...))
	runtime.Goexit()
}

func (r *recordingTB) errors() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.errs, "\n")
}
