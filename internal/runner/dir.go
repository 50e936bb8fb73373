package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// namespaces of a directory-mode run.
const dirCloneflags = unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC

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
	inMount, err := workdirInMount(root, dir, s.Mounts)
	if err != nil {
		return err
	}
	if !inMount {
		if err := ensureWorkdir(root, dir, s.UID, s.GID); err != nil {
			return err
		}
	}
	tmp, err := os.MkdirTemp("", "kiln-run-")
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
		Root: root, Hostname: s.Hostname, Args: s.Args, Env: s.Env, Dir: dir,
		UID: s.UID, GID: s.GID, Groups: s.Groups,
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
	for i, f := range append(provided, s.Files...) {
		p := cleanImagePath(f.Path)
		if rel, ok := strings.CutPrefix(p, "/dev/"); ok {
			is.DevFiles = append(is.DevFiles, devFile{Rel: rel, Data: f.Data, Mode: uint32(f.Mode.Perm())})
			continue
		}
		src := filepath.Join(tmp, strconv.Itoa(i)+"-"+path.Base(p))
		if err := writeFileMode(src, f.Data, f.Mode.Perm()); err != nil {
			return nil, fmt.Errorf("provide %s: %w", p, err)
		}
		target, err := sc.ensure(p, false)
		if err != nil {
			return nil, err
		}
		is.Binds = append(is.Binds, bind{Source: src, Target: target})
		points = append(points, mountPoint{p, target})
	}
	if is.Mounts, err = prepareMounts(sc, s.Mounts, points); err != nil {
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
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: dirCloneflags}
	err = cmd.Start()
	specR.Close()
	reportW.Close()
	streams.close()
	if err != nil {
		streams.wait()
		return fmt.Errorf("start the runner helper (re-executing /proc/self/exe in new mount, pid, uts and ipc namespaces): %w", err)
	}
	// A write error means the helper died early; Wait and the report say why.
	_ = json.NewEncoder(specW).Encode(is)
	report, _ := io.ReadAll(reportR)
	waitErr := cmd.Wait()
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
