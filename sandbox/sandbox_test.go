package sandbox_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/internal/testenv"
	"github.com/kilnbuild/kiln/registry"
	"github.com/kilnbuild/kiln/sandbox"
	"golang.org/x/sys/unix"
)

// needSandbox skips a test on a machine where the sandbox cannot run, saying why.
func needSandbox(t *testing.T) {
	t.Helper()
	if err := sandbox.Supported(); err != nil {
		t.Skipf("the sandbox cannot run here: %v", err)
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skipf("needs a static /bin/busybox (Debian busybox-static) for test images: %v", err)
	}
}

// unpack unpacks a busybox image with cfg and the extra layers into a temp dir.
func unpack(t *testing.T, cfg v1.Config, extra ...v1.Layer) *sandbox.Root {
	t.Helper()
	img, err := busyboxImage(cfg, extra...)
	if err != nil {
		t.Fatal(err)
	}
	root, err := sandbox.Unpack(context.Background(), img, filepath.Join(t.TempDir(), "rootfs"))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// output runs c in root and returns its stdout, failing on any error.
func output(t *testing.T, root *sandbox.Root, c sandbox.Command) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := root.Run(ctx, c); err != nil {
		t.Fatalf("Run %q: %v (stderr %q)", c.Args, err, stderr.String())
	}
	return stdout.String()
}

// lines collects log lines.
type lines []string

func (l *lines) Infof(format string, args ...any) { *l = append(*l, fmt.Sprintf(format, args...)) }

func TestUnpackAppliesLayersInOrderAndLogs(t *testing.T) {
	needSandbox(t)
	top, err := tarLayer(
		tarEntry{Name: "etc/.wh.group"},
		tarEntry{Name: "bin/.wh.ls"},
		tarEntry{Name: "app/"},
		tarEntry{Name: "app/run.sh", Body: "#!/bin/sh\necho run\n", Mode: 0o755},
	)
	if err != nil {
		t.Fatal(err)
	}
	img, err := busyboxImage(v1.Config{Env: []string{"A=1"}}, top)
	if err != nil {
		t.Fatal(err)
	}
	var log lines
	dir := filepath.Join(t.TempDir(), "rootfs")
	root, err := sandbox.Unpack(context.Background(), img, dir, sandbox.WithLogger(&log))
	if err != nil {
		t.Fatal(err)
	}
	if root.Dir != dir || strings.Join(root.Config.Env, " ") != "A=1" {
		t.Fatalf("root %+v", root)
	}
	for _, gone := range []string{"etc/group", "bin/ls", "etc/.wh.group"} {
		if _, err := os.Lstat(filepath.Join(dir, gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s present after a whiteout (err %v)", gone, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "app/run.sh")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("app/run.sh: %v %v", fi, err)
	}
	text := strings.Join(log, "\n")
	for _, want := range []string{"unpacking 2 layers", "layer 1/2 sha256:", "layer 2/2 sha256:", "unpacked 2 layers, "} {
		if !strings.Contains(text, want) {
			t.Errorf("log lacks %q:\n%s", want, text)
		}
	}
}

func TestUnpackRefusesNonEmptyDirAndHostRoot(t *testing.T) {
	img, err := tarLayer(tarEntry{Name: "f", Body: "x"})
	if err != nil {
		t.Fatal(err)
	}
	image, err := busyboxImageOrSkip(t, img)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := sandbox.Unpack(context.Background(), image, dir); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("unpack into a non-empty dir: %v", err)
	}
	link := filepath.Join(t.TempDir(), "slash")
	if err := os.Symlink("/", link); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"/", link} {
		if _, err := sandbox.Unpack(context.Background(), image, d); err == nil || !strings.Contains(err.Error(), "host's /") {
			t.Fatalf("unpack into %s: %v", d, err)
		}
	}
}

// busyboxImageOrSkip is busyboxImage for tests that do not run anything.
func busyboxImageOrSkip(t *testing.T, extra ...v1.Layer) (v1.Image, error) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skipf("needs a static /bin/busybox (Debian busybox-static) for test images: %v", err)
	}
	return busyboxImage(v1.Config{}, extra...)
}

func TestRunUsesImageDefaults(t *testing.T) {
	needSandbox(t)
	root := unpack(t, v1.Config{
		Env:        []string{"PATH=/bin", "FROM_IMAGE=image", "BOTH=image"},
		WorkingDir: "/srv/app",
		User:       "builder",
	})
	out := output(t, root, sandbox.Command{
		Args: []string{"sh", "-c", `echo "$FROM_IMAGE $BOTH $FROM_CMD $HOME $PATH"; pwd; id -u; id -G`},
		Env:  []string{"BOTH=command", "FROM_CMD=command"},
	})
	want := "image command command /home/builder /bin\n/srv/app\n1000\n1000 2000\n"
	if out != want {
		t.Fatalf("output %q, want %q", out, want)
	}
	// The working directory was created, owned by the user, as Docker does.
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(root.Dir, "srv/app"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 1000 || st.Gid != 1000 {
		t.Errorf("working directory owned by %d:%d, want the user's 1000:1000", st.Uid, st.Gid)
	}
	// The command's own user and directory win over the image's.
	out = output(t, root, sandbox.Command{Args: []string{"sh", "-c", "id -u; pwd; echo $HOME"}, User: "0:0", Dir: "/tmp"})
	if out != "0\n/tmp\n/root\n" {
		t.Fatalf("output %q", out)
	}
}

func TestRunDefaultsWithoutConfig(t *testing.T) {
	needSandbox(t)
	root := unpack(t, v1.Config{})
	if out := output(t, root, sandbox.Command{Args: []string{"sh", "-c", "echo $PATH; pwd; id -u"}}); out != "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n/\n0\n" {
		t.Fatalf("output %q", out)
	}
}

func TestRunEntrypointAndCmd(t *testing.T) {
	needSandbox(t)
	root := unpack(t, v1.Config{Entrypoint: []string{"echo", "entry"}, Cmd: []string{"cmd"}})
	if out := output(t, root, sandbox.Command{}); out != "entry cmd\n" {
		t.Fatalf("output %q", out)
	}
	empty := unpack(t, v1.Config{})
	if err := empty.Run(context.Background(), sandbox.Command{}); err == nil || !strings.Contains(err.Error(), "no Entrypoint or Cmd") {
		t.Fatalf("no command: %v", err)
	}
}

func TestRunUnknownUserNamesIt(t *testing.T) {
	needSandbox(t)
	root := unpack(t, v1.Config{User: "ghost"})
	err := root.Run(context.Background(), sandbox.Command{Args: []string{"true"}})
	if err == nil || !strings.Contains(err.Error(), "ghost") || !strings.Contains(err.Error(), "/etc/passwd") {
		t.Fatalf("want an error naming ghost and /etc/passwd, got %v", err)
	}
}

func TestRunExitCodeAndMounts(t *testing.T) {
	needSandbox(t)
	root := unpack(t, v1.Config{})
	ws, ro := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(ro, "input"), []byte("in\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	err := root.Run(context.Background(), sandbox.Command{
		Args: []string{"sh", "-c", "cat /src/input > out; echo x > /src/nope || exit 7"},
		Dir:  "/workspace/sub",
		Mounts: []sandbox.Mount{
			{Source: ws, Target: "/workspace"},
			{Source: ro, Target: "/src", ReadOnly: true},
		},
		Stderr: &stderr,
	})
	var exit *sandbox.ExitError
	if !errors.As(err, &exit) || exit.Code != 7 || err.Error() != "exit status 7" {
		t.Fatalf("want *ExitError 7, got %v (stderr %q)", err, stderr.String())
	}
	if b, err := os.ReadFile(filepath.Join(ws, "sub/out")); err != nil || string(b) != "in\n" {
		t.Fatalf("host workspace sub/out = %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(ro, "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read-only mount written (err %v)", err)
	}
	for _, p := range []string{"workspace", "src"} {
		if _, err := os.Lstat(filepath.Join(root.Dir, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("mount point /%s left in the root (err %v)", p, err)
		}
	}
}

func TestRunNeverTouchesHostRoot(t *testing.T) {
	needSandbox(t)
	root := unpack(t, v1.Config{})
	marker := "/kiln-sandbox-host-must-not-see-" + filepath.Base(t.TempDir())
	output(t, root, sandbox.Command{Args: []string{"sh", "-c", "echo inside > " + marker}})
	if _, err := os.Stat(marker); err == nil {
		os.Remove(marker)
		t.Fatalf("the command wrote %s on the host", marker)
	}
	if b, err := os.ReadFile(filepath.Join(root.Dir, marker)); err != nil || string(b) != "inside\n" {
		t.Fatalf("root %s: %q %v", marker, b, err)
	}
	// A Root naming the host's / (directly or through a symlink) is refused, not run on the host.
	link := filepath.Join(t.TempDir(), "slash")
	if err := os.Symlink("/", link); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"/", link} {
		r := &sandbox.Root{Dir: d}
		err := r.Run(context.Background(), sandbox.Command{Args: []string{"sh", "-c", "echo bad > " + marker}})
		if err == nil || !strings.Contains(err.Error(), "host's /") {
			t.Fatalf("Root{Dir: %q}: %v", d, err)
		}
		if err := r.Remove(); err == nil {
			t.Fatalf("Remove of %s accepted", d)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		os.Remove(marker)
		t.Fatalf("a Root of / ran on the host")
	}
}

func TestRunCancelKillsTheCommand(t *testing.T) {
	needSandbox(t)
	root := unpack(t, v1.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	var stdout bytes.Buffer
	started := make(chan struct{})
	w := &notifyWriter{w: &stdout, first: started}
	errc := make(chan error, 1)
	go func() {
		errc <- root.Run(ctx, sandbox.Command{Args: []string{"sh", "-c", "echo started; sleep 4343; echo survived"}, Stdout: w})
	}()
	select {
	case <-started:
	case err := <-errc:
		t.Fatalf("command ended early: %v", err)
	}
	cancel()
	err := <-errc
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	if strings.Contains(stdout.String(), "survived") {
		t.Fatal("the command went on after cancel")
	}
	if pids := processesWith("sleep\x004343"); len(pids) > 0 {
		t.Fatalf("sleep still running as %v", pids)
	}
}

// notifyWriter closes first at the first write.
type notifyWriter struct {
	w     *bytes.Buffer
	first chan struct{}
	done  bool
}

func (n *notifyWriter) Write(p []byte) (int, error) {
	if !n.done {
		n.done = true
		close(n.first)
	}
	return n.w.Write(p)
}

// processesWith returns the pids whose command line contains pattern.
func processesWith(pattern string) []string {
	entries, _ := os.ReadDir("/proc")
	var pids []string
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && strings.Contains(string(b), pattern) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

func TestUnpackPulledImage(t *testing.T) {
	needSandbox(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	ref := testenv.PushBusybox(t, reg, "sandbox/busybox:1")
	img, err := registry.Pull(context.Background(), ref, registry.WithInsecure(reg.Addr))
	if err != nil {
		t.Fatal(err)
	}
	root, err := sandbox.Unpack(context.Background(), img, filepath.Join(t.TempDir(), "rootfs"))
	if err != nil {
		t.Fatal(err)
	}
	if out := output(t, root, sandbox.Command{Args: []string{"sh", "-c", "echo $PATH; ls -ld /tmp | cut -c1-10"}}); out != "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\ndrwxrwxrwt\n" {
		t.Fatalf("output %q", out)
	}
	if err := root.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Remove left %s (err %v)", root.Dir, err)
	}
}
