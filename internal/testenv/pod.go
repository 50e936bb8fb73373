package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// DefaultPodTimeout bounds a pod run when Pod.Timeout is zero.
const DefaultPodTimeout = 10 * time.Minute

// Pod describes one run of an executor the way a Kaniko build pod runs it.
type Pod struct {
	// Executor is the host path of the binary copied to /kaniko/executor.
	// It must be static: the pod root holds no libc.
	Executor string
	// Context is the host directory bind-mounted (read-write) at /workspace.
	Context string
	// DockerConfig, if set, is copied to /kaniko/.docker/config.json.
	DockerConfig string
	// Args are passed to /kaniko/executor.
	Args []string
	// Env is added to the Kaniko image's environment (KEY=VALUE).
	Env []string
	// Mounts bind-mounts host paths (files or directories) into the pod,
	// keyed by the path inside the pod, e.g. {"/cache": cacheDir}.
	Mounts map[string]string
	// Stdin feeds the executor's standard input (none if nil).
	Stdin io.Reader
	// Timeout kills the pod after this long (DefaultPodTimeout if zero).
	Timeout time.Duration
	// Signal, if set, signals the executor once its output shows a string
	// (see PodSignal); the test fails if the string never appears.
	Signal *PodSignal
	// DropCaps removes capabilities (setpriv names, e.g. "sys_admin") from
	// the executor, as a real cluster runs build pods without CAP_SYS_ADMIN.
	DropCaps []string
	// Cgroup, if set, is the cgroup (NewCgroup) the pod's processes run in, with its
	// memory and pids limits, as a container runtime runs a pod's containers.
	Cgroup *Cgroup
}

// PodResult is what a pod run left behind.
type PodResult struct {
	// ExitCode is the executor's exit status (128+N if killed by signal N).
	ExitCode int
	Stdout   string
	Stderr   string
	// Root is the pod's root directory on the host, kept until the test's
	// cleanup so tests can inspect what the executor wrote outside mounts.
	Root string
	// SinceSignal is how long the executor ran after Pod.Signal was sent.
	SinceSignal time.Duration
}

// kanikoEnv is the environment of Kaniko's executor image.
func kanikoEnv() []string {
	return []string{
		"PATH=/usr/local/bin:/kaniko",
		"HOME=/root",
		"USER=root",
		"SSL_CERT_DIR=/kaniko/ssl/certs",
		"DOCKER_CONFIG=/kaniko/.docker/",
	}
}

// RunPod runs p.Executor in a throwaway root with its own mount and pid
// namespaces (it is pid 1 there), /proc, /sys (read-only) and a /dev of
// device nodes, the context at /workspace, copies of the host's /etc/hosts
// and /etc/resolv.conf bind-mounted, CA certificates at /kaniko/ssl/certs,
// the Kaniko image's environment plus p.Env, working directory /workspace.
// A non-zero exit does not fail the test (the result says it; output is
// logged); failing to set up the pod does.
func RunPod(t testing.TB, p Pod) PodResult {
	t.Helper()
	requireRoot(t, "RunPod")
	unshare := requireTool(t, "unshare", "util-linux")
	if p.Executor == "" {
		t.Fatal("testenv: RunPod: Pod.Executor is empty")
	}
	work := t.TempDir()
	root := filepath.Join(work, "root")
	layout := podLayout{root: root, hosts: filepath.Join(work, "hosts"), resolv: filepath.Join(work, "resolv.conf"), unshare: unshare}
	if len(p.DropCaps) > 0 {
		layout.setpriv = requireTool(t, "setpriv", "util-linux")
	}
	if err := layout.prepare(p); err != nil {
		t.Fatalf("testenv: RunPod: %v", err)
	}
	// Runs before t.TempDir's removal (cleanups run last-in first-out): the
	// root must hold no mount when it is deleted.
	t.Cleanup(func() { checkNoMounts(t, root) })
	script, err := layout.script(p)
	if err != nil {
		t.Fatalf("testenv: RunPod: %v", err)
	}
	scriptFile := filepath.Join(work, "pod.sh")
	writeFile(t, scriptFile, []byte(script), 0o700)

	timeout := p.Timeout
	if timeout == 0 {
		timeout = DefaultPodTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// --kill-child: if unshare dies (timeout), pid 1 of the pod dies and
	// takes every process of the pod with it.
	cmd := exec.CommandContext(ctx, unshare, "--mount", "--pid", "--kill-child",
		"--propagation=private", "--mount-proc="+filepath.Join(root, "proc"), "/bin/sh", scriptFile)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Stdin = p.Stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var unsharePid atomic.Int64
	var watch *signalWatch
	if p.Signal != nil {
		watch = newSignalWatch(*p.Signal, func() int { return int(unsharePid.Load()) })
		cmd.Stdout, cmd.Stderr = watch.writer("stdout"), watch.writer("stderr")
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	if err = cmd.Start(); err == nil {
		unsharePid.Store(int64(cmd.Process.Pid))
		err = cmd.Wait()
	}
	res := PodResult{Stdout: stdout.String(), Stderr: stderr.String(), Root: root}
	if watch != nil {
		var sent time.Time
		var werr error
		res.Stdout, res.Stderr, sent, werr = watch.result()
		if werr != nil {
			t.Errorf("testenv: RunPod: signal: %v", werr)
		} else {
			res.SinceSignal = time.Since(sent)
		}
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		res.ExitCode = exitCode(exitErr)
	default:
		t.Fatalf("testenv: RunPod: run %s: %v", unshare, err)
	}
	if ctx.Err() == context.DeadlineExceeded {
		t.Errorf("testenv: RunPod: killed after %s timeout", timeout)
	}
	if res.ExitCode != 0 {
		t.Logf("testenv: pod %s %q exited %d after %s\n--- stdout\n%s\n--- stderr\n%s",
			filepath.Base(p.Executor), p.Args, res.ExitCode, time.Since(start).Round(time.Millisecond), res.Stdout, res.Stderr)
	}
	return res
}

// exitCode maps a wait status to a shell-style exit code.
func exitCode(e *exec.ExitError) int {
	if ws, ok := e.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return e.ExitCode()
}

// requireRoot skips the test when not running as root.
func requireRoot(t testing.TB, what string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("testenv: %s needs root (namespaces, mounts, chroot); running as uid %d", what, os.Geteuid())
	}
}

// checkNoMounts fails the test if anything is still mounted under dir and
// lazily detaches it so the temp dir removal cannot reach into a mount.
func checkNoMounts(t testing.TB, dir string) {
	left, err := mountsUnder(dir)
	if err != nil {
		t.Errorf("testenv: read mountinfo: %v", err)
		return
	}
	for _, m := range left {
		t.Errorf("testenv: %s is still mounted after the pod ended", m)
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			// Removing the temp dir now could delete host files through a
			// bind mount: stop the test process instead.
			panic(fmt.Sprintf("testenv: cannot unmount %s (%v); not removing %s", m, err, dir))
		}
	}
}
