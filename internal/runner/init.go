package runner

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// init turns this process into the runner's helper when it was re-executed
// with a marker in argv[0]; any other process continues normally. See the
// package documentation.
func init() {
	if len(os.Args) == 0 {
		return
	}
	// syscall.Exit skips os.Exit's hooks, notably the race detector's
	// one-second pause at exit, which would slow every race-enabled run.
	switch os.Args[0] {
	case initMarker:
		syscall.Exit(helperMain())
	case probeMarker:
		syscall.Exit(probeMain())
	}
}

// forwardedSignals are passed on from the helper to the command.
func forwardedSignals() []os.Signal {
	return []os.Signal{
		unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT,
		unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH,
	}
}

// helperMain runs as pid 1 of the new namespaces: it sets up the root,
// starts the command, forwards signals, reaps every child and returns the
// command's exit code. Set-up failures are written to reportFD.
func helperMain() int {
	// The descriptors must not leak into the command.
	unix.CloseOnExec(specFD)
	unix.CloseOnExec(reportFD)
	specFile := os.NewFile(specFD, "kiln-runner-spec")
	report := os.NewFile(reportFD, "kiln-runner-report")
	fail := func(err error) int {
		fmt.Fprint(report, err.Error())
		return 125
	}

	var is initSpec
	if err := json.NewDecoder(specFile).Decode(&is); err != nil {
		return fail(fmt.Errorf("runner helper: read spec: %w", err))
	}
	// The parent keeps the spec pipe open until the run is over; EOF means
	// the parent died, and then the whole pid namespace (in pod mode: the
	// helper's process group) should go too.
	go func() {
		_, _ = io.Copy(io.Discard, specFile)
		if is.Pod {
			_ = unix.Kill(0, unix.SIGKILL)
		}
		syscall.Exit(137)
	}()

	if err := setup(&is); err != nil {
		return fail(err)
	}
	argv0, err := lookPath(is.Args[0], is.Env)
	if err != nil {
		return fail(err)
	}
	unix.Umask(0o022)

	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwardedSignals()...)
	groups := make([]uint32, len(is.Groups))
	copy(groups, is.Groups)
	pid, err := syscall.ForkExec(argv0, is.Args, &syscall.ProcAttr{
		Dir:   is.Dir,
		Env:   is.Env,
		Files: []uintptr{0, 1, 2},
		Sys: &syscall.SysProcAttr{
			Credential: &syscall.Credential{Uid: is.UID, Gid: is.GID, Groups: groups},
		},
	})
	if err != nil {
		return fail(describeStartError(argv0, is.Dir, err))
	}
	report.Close()

	go func() {
		for sig := range sigs {
			_ = unix.Kill(pid, sig.(syscall.Signal))
		}
	}()
	return reapUntil(pid)
}

// setup prepares the run's namespaces: the network, then the root and its
// mounts (directory mode) or the mounts alone (pod mode).
func setup(is *initSpec) error {
	if is.NewNet {
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	if is.Pod {
		return setupPod(is)
	}
	if err := setupRoot(is); err != nil {
		return err
	}
	if err := unix.Sethostname([]byte(is.Hostname)); err != nil {
		return fmt.Errorf("set hostname %q: %w", is.Hostname, err)
	}
	return nil
}

// reapUntil reaps every child (orphans are re-parented to pid 1 in
// directory mode; in pod mode the command is the only child) until the
// command itself exits, and returns its exit code, 128+N for signal N.
func reapUntil(pid int) int {
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 125
		}
		if wpid != pid {
			continue
		}
		switch {
		case ws.Exited():
			return ws.ExitStatus()
		case ws.Signaled():
			return 128 + int(ws.Signal())
		}
	}
}

// describeStartError makes ForkExec's bare errno readable.
func describeStartError(argv0, dir string, err error) error {
	if err == unix.ENOENT || err == unix.EACCES || err == unix.ENOTDIR {
		// Either the program or the working directory; say which exists.
		if _, serr := os.Stat(dir); serr != nil {
			return fmt.Errorf("chdir %s: %w", dir, serr)
		}
	}
	return fmt.Errorf("fork/exec %s: %w", argv0, err)
}
