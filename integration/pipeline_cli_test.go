package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/mountinfo"
	"github.com/kilnbuild/kiln/internal/testenv"
)

// goTool is the go command: from PATH, else where this machine installs it.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// cliResult is what one run of bin/pipeline did.
type cliResult struct {
	args           []string
	code           int
	stdout, stderr string
}

// output is stdout then stderr: the build command's output, then the log.
func (r cliResult) output() string { return r.stdout + r.stderr }

func (r cliResult) String() string {
	return fmt.Sprintf("pipeline %s: exit code %d\n--- stdout\n%s\n--- stderr\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// cli runs bin/pipeline for one test: in a clean environment (no KUBECONFIG, BUILD_NUMBER or
// registry credentials of this machine leak in), with its scratch space in the test's temp dir.
type cli struct {
	bin string
	dir string   // working directory
	env []string // the whole environment
	tmp string   // TMPDIR, checked for leftover mounts after every run
}

func newCLI(t *testing.T, dir string) *cli {
	t.Helper()
	home, tmp := t.TempDir(), t.TempDir()
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + home, "TMPDIR=" + tmp,
		// An empty docker config: the test registries take no credentials.
		"DOCKER_CONFIG=" + filepath.Join(home, ".docker"),
	}
	return &cli{bin: testenv.BuildPipeline(t), dir: dir, env: env, tmp: tmp}
}

// withEnv returns a copy of c whose runs get kv (NAME=VALUE) in their environment too.
func (c *cli) withEnv(kv ...string) *cli {
	c2 := *c
	c2.env = append(slices.Clone(c.env), kv...) // the last value of a name wins
	return &c2
}

// command returns the exec.Cmd of one run, stopped by SIGTERM when ctx ends (the pipeline then
// stops its stages and their sandboxes).
func (c *cli) command(ctx context.Context, args []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Dir, cmd.Env = c.dir, c.env
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// run runs the binary with args and returns what it did; it fails the test only when the binary
// cannot be run at all, or when it leaves a mount behind.
func (c *cli) run(t *testing.T, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := c.command(ctx, args)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := cliResult{args: args, stdout: stdout.String(), stderr: stderr.String(), code: exitCodeOf(t, err)}
	t.Logf("pipeline %s: exit code %d after %s", strings.Join(args, " "), res.code, time.Since(start).Round(10*time.Millisecond))
	if ctx.Err() != nil {
		t.Fatalf("pipeline %s did not end within 15m\n%s", strings.Join(args, " "), res)
	}
	c.checkNoMounts(t)
	return res
}

// want runs the binary and fails the test unless it exits with code.
func (c *cli) want(t *testing.T, code int, args ...string) cliResult {
	t.Helper()
	res := c.run(t, args...)
	if res.code != code {
		t.Fatalf("want exit code %d\n%s", code, res)
	}
	return res
}

func exitCodeOf(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	t.Fatalf("run bin/pipeline: %v", err)
	return -1
}

// checkNoMounts fails the test if a run left anything mounted in its scratch space, and
// detaches it, so that removing the temp dir cannot reach through a bind mount.
func (c *cli) checkNoMounts(t *testing.T) {
	t.Helper()
	points, err := mountinfo.Points(mountinfo.Self)
	if err != nil {
		t.Errorf("read mountinfo: %v", err)
		return
	}
	for i := len(points) - 1; i >= 0; i-- {
		if p := points[i]; strings.HasPrefix(p, c.tmp+"/") {
			t.Errorf("bin/pipeline left %s mounted", p)
			if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil {
				panic(fmt.Sprintf("cannot unmount %s (%v); not removing %s", p, err, c.tmp))
			}
		}
	}
}

// wantAll fails the test for every string of want that text lacks.
func wantAll(t *testing.T, what, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, text)
		}
	}
}

// wantNone fails the test for every string of bad that text holds.
func wantNone(t *testing.T, what, text string, bad ...string) {
	t.Helper()
	for _, b := range bad {
		if strings.Contains(text, b) {
			t.Errorf("%s holds %q:\n%s", what, b, text)
		}
	}
}

// lockedBuffer is an output buffer a running command writes while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until the buffer holds s, or fails the test after timeout.
func (b *lockedBuffer) waitFor(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(b.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the output within %s:\n%s", s, timeout, b.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
