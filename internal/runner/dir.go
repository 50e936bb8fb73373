package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// namespaces of a directory-mode run.
const dirCloneflags = unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC

// helperAttr gives the helper its namespaces: directory mode's, or in pod
// mode a mount namespace only (in a process group of its own, as pod-mode
// commands run); a network namespace too for NetworkNone.
func helperAttr(is *initSpec) *syscall.SysProcAttr {
	flags := uintptr(dirCloneflags)
	if is.Pod {
		flags = unix.CLONE_NEWNS
	}
	if is.NewNet {
		flags |= unix.CLONE_NEWNET
	}
	return &syscall.SysProcAttr{Cloneflags: flags, Setpgid: is.Pod}
}

// helperStartError explains a failed start of the helper. EPERM there
// means this process may not create namespaces (no CAP_SYS_ADMIN), which
// a build pod usually lacks.
func helperStartError(is *initSpec, err error) error {
	if !is.Pod {
		return fmt.Errorf("start the runner helper (re-executing /proc/self/exe in new mount, pid, uts and ipc namespaces): %w", err)
	}
	var what []string
	if len(is.Files)+len(is.Mounts)+len(is.Tmpfs) > 0 {
		what = append(what, "a private mount namespace for its mounts")
	}
	if is.NewNet {
		what = append(what, "a network namespace for --network=none")
	}
	need := "pod mode needs " + strings.Join(what, " and ")
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%s, which this container may not create (operation not permitted: it lacks CAP_SYS_ADMIN); "+
			"give the build pod CAP_SYS_ADMIN, or build in directory mode", need)
	}
	return fmt.Errorf("%s: start the runner helper: %w", need, err)
}

// runDir runs s in directory mode; see the package documentation.
func runDir(ctx context.Context, s Spec) (err error) {
	// The full probe (Supported) costs a process start; the helper's own
	// errors are just as clear, so only the cheap check runs here.
	if uid := os.Geteuid(); uid != 0 {
		return fmt.Errorf("directory mode needs root to create namespaces and mounts (running as uid %d)", uid)
	}
	root, err := resolveRoot(s.Root)
	if err != nil {
		return err
	}
	dir := cleanImagePath(s.Dir)
	inMount, err := workdirInMount(root, dir, mountTargets(s))
	if err != nil {
		return err
	}
	if !inMount {
		if err := ensureWorkdir(root, dir, s.UID, s.GID); err != nil {
			return err
		}
	}
	tmp, err := os.MkdirTemp(s.TempDir, "kiln-run-")
	if err != nil {
		return fmt.Errorf("runner temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)

	sc := newScratch(root)
	defer func() {
		if uerr := sc.undo(); uerr != nil {
			err = errors.Join(err, uerr)
		}
	}()
	is, err := prepareDir(sc, tmp, root, dir, s)
	if err != nil {
		sc.seal() // nothing ran: undo restores every parent's times
		return err
	}
	is.MakeDir = inMount
	sc.seal()
	return startHelper(ctx, is, s)
}

// resolveRoot returns the absolute, symlink-free path of an existing root
// directory, so mount targets computed from it are exact.
func resolveRoot(root string) (string, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("root %s: %w", root, err)
	}
	abs, err = filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("root %s: %w", root, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("root %s: %w", root, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("root %s is not a directory", root)
	}
	return abs, nil
}

// prepareDir creates the mount points and private copies a run needs and
// describes them for the helper.
func prepareDir(sc *scratch, tmp, root, dir string, s Spec) (*initSpec, error) {
	is := &initSpec{
		Root: root, Stage: tmp, Hostname: s.Hostname, Args: s.Args, Env: s.Env, Dir: dir,
		UID: s.UID, GID: s.GID, Groups: s.Groups, NewNet: s.Network == NetworkNone,
	}
	if is.Hostname == "" {
		is.Hostname = defaultHostname
	}
	var err error
	if is.Proc, err = sc.ensure("/proc", true); err != nil {
		return nil, err
	}
	if is.Sys, err = sc.ensure("/sys", true); err != nil {
		return nil, err
	}
	if is.Dev, err = sc.ensure("/dev", true); err != nil {
		return nil, err
	}
	points := []mountPoint{{"/proc", is.Proc}, {"/sys", is.Sys}, {"/dev", is.Dev}}
	// Private copies: a command writing /etc/hosts must not change the host's.
	hosts, err := hostsFile(is.Hostname)
	if err != nil {
		return nil, err
	}
	resolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read /etc/resolv.conf: %w", err)
	}
	provided := []File{
		{Path: "/etc/hosts", Data: hosts, Mode: 0o644},
		{Path: "/etc/resolv.conf", Data: resolv, Mode: 0o644},
	}
	var staged []File
	for _, f := range append(provided, s.Files...) {
		p := cleanImagePath(f.Path)
		if rel, ok := strings.CutPrefix(p, "/dev/"); ok {
			is.DevFiles = append(is.DevFiles, devFile{Rel: rel, Data: f.Data, Mode: uint32(f.Mode.Perm())})
			continue
		}
		staged = append(staged, f)
	}
	if err := prepareProvided(sc, is, staged, s, points); err != nil {
		return nil, err
	}
	return is, nil
}

// hostsFile is the host's /etc/hosts (or a minimal one) plus the run's
// host name, as Docker provides it.
func hostsFile(hostname string) ([]byte, error) {
	data, err := os.ReadFile("/etc/hosts")
	if errors.Is(err, os.ErrNotExist) {
		data = []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	} else if err != nil {
		return nil, fmt.Errorf("read /etc/hosts: %w", err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	return append(data, []byte("127.0.1.1\t"+hostname+"\n")...), nil
}

// writeFileMode writes a file with exactly the given permission bits.
func writeFileMode(p string, data []byte, mode os.FileMode) error {
	if err := os.WriteFile(p, data, 0o600); err != nil {
		return err
	}
	return os.Chmod(p, mode)
}

// startHelper re-executes this binary as the helper in new namespaces,
// hands it the spec and waits for it. Cancelling ctx kills the helper,
// and with it (pid 1) everything in its pid namespace.
func startHelper(ctx context.Context, is *initSpec, s Spec) error {
	specR, specW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("runner pipe: %w", err)
	}
	defer specW.Close()
	reportR, reportW, err := os.Pipe()
	if err != nil {
		specR.Close()
		return fmt.Errorf("runner pipe: %w", err)
	}
	defer reportR.Close()
	streams, err := newStdio(s.Stdin, s.Stdout, s.Stderr)
	if err != nil {
		specR.Close()
		reportW.Close()
		return err
	}

	cmd := exec.CommandContext(ctx, "/proc/self/exe")
	cmd.Args = []string{initMarker}
	cmd.Env = []string{} // the command's environment travels in the spec
	streams.attach(cmd)
	cmd.ExtraFiles = []*os.File{specR, reportW}
	cmd.SysProcAttr = helperAttr(is)
	if is.Pod {
		// The command stays in the helper's process group, which dies as one.
		cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	}
	err = cmd.Start()
	specR.Close()
	reportW.Close()
	streams.close()
	if err != nil {
		streams.wait()
		return helperStartError(is, err)
	}
	// A write error means the helper died early; Wait and the report say why.
	_ = json.NewEncoder(specW).Encode(is)
	report, _ := io.ReadAll(reportR)
	waitErr := cmd.Wait()
	if is.Pod {
		// Not pid 1 of a namespace: what the command left running dies here.
		killGroupAndWait(cmd.Process.Pid)
	}
	specW.Close() // the lifeline: the helper is gone anyway
	streams.wait()

	if ctx.Err() != nil {
		return fmt.Errorf("run %s: %w", s.Args[0], ctx.Err())
	}
	if len(report) > 0 {
		return errors.New(string(report))
	}
	return exitError(waitErr)
}

// exitError converts a Wait error into an *ExitError (128+N for a process
// killed by signal N) or passes other errors on.
func exitError(err error) error {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return err
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return &ExitError{Code: 128 + int(ws.Signal())}
	}
	return &ExitError{Code: ee.ExitCode()}
}
