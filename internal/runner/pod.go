package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// runPod runs s directly in this process's root (pod mode), in a process
// group of its own that is killed when the command exits or ctx ends.
func runPod(ctx context.Context, s Spec) (err error) {
	switch {
	case needsNamespace(s) && s.EmulateMounts:
		return runPodEmulated(ctx, s)
	case needsNamespace(s):
		return runPodIsolated(ctx, s)
	}
	dir := cleanImagePath(s.Dir)
	if err := ensureWorkdir("/", dir, s.UID, s.GID); err != nil {
		return err
	}
	sc := newScratch("/")
	defer func() {
		if uerr := sc.undo(); uerr != nil {
			err = errors.Join(err, uerr)
		}
	}()
	if err := providePodFiles(sc, s.Files); err != nil {
		return err
	}
	sc.seal()
	return execPod(ctx, s, dir)
}

// execPod starts s's command in this process's root and namespaces, in the
// working directory dir, and waits for it.
func execPod(ctx context.Context, s Spec, dir string) error {
	argv0, err := lookPath(s.Args[0], s.Env)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, argv0)
	cmd.Args = s.Args
	cmd.Env = s.Env
	cmd.Dir = dir
	return runInGroup(ctx, s, cmd, &syscall.SysProcAttr{}, s.Args[0])
}

// runInGroup runs cmd (path, args, env and dir set; attr its other process attributes) with
// s's stdio and credentials, in a process group of its own, and waits for it. Background
// processes of the command die with it, as in Kaniko; only then can the output pipes they
// hold reach EOF. what names the command in a failure to start.
func runInGroup(ctx context.Context, s Spec, cmd *exec.Cmd, attr *syscall.SysProcAttr, what string) error {
	streams, err := newStdio(s.Stdin, s.Stdout, s.Stderr)
	if err != nil {
		return err
	}
	streams.attach(cmd)
	attr.Setpgid, attr.Credential = true, podCredential(s)
	cmd.SysProcAttr = attr
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	err = cmd.Start()
	streams.close()
	if err != nil {
		streams.wait()
		return fmt.Errorf("start %s: %w", what, err)
	}
	waitErr := cmd.Wait()
	killGroupAndWait(cmd.Process.Pid)
	streams.wait()
	if ctx.Err() != nil {
		return fmt.Errorf("run %s: %w", s.Args[0], ctx.Err())
	}
	return exitError(waitErr)
}

// groupGoneTimeout bounds how long a finished RUN waits for its killed background processes
// to be reaped.
const groupGoneTimeout = 2 * time.Second

// killGroupAndWait kills the process group led by pid and waits (up to groupGoneTimeout) until
// none of its processes is left, zombies included. Orphans are re-parented to the container's
// pid 1, which reaps them (the executor's own, cmd/executor); until then they hold pids that a
// pod's pids limit counts, and the next RUN could not fork.
func killGroupAndWait(pid int) {
	_ = killGroup(pid)
	deadline := time.Now().Add(groupGoneTimeout)
	for time.Now().Before(deadline) {
		// Signal 0 reaches a group while any member, a zombie too, is not yet reaped.
		if err := unix.Kill(-pid, 0); err == unix.ESRCH {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// killGroup kills the process group led by pid; a group already gone is fine.
func killGroup(pid int) error {
	if err := unix.Kill(-pid, unix.SIGKILL); err != nil && err != unix.ESRCH {
		return err
	}
	return nil
}

// podCredential returns the credentials to switch to, or nil when the
// process already has them (so pod mode works unprivileged for the
// current user).
func podCredential(s Spec) *syscall.Credential {
	if uint32(os.Getuid()) == s.UID && uint32(os.Getgid()) == s.GID && len(s.Groups) == 0 && os.Getuid() != 0 {
		return nil
	}
	return &syscall.Credential{Uid: s.UID, Gid: s.GID, Groups: slices.Clone(s.Groups)}
}

// providePodFiles writes s.Files at their paths for the run. Without a
// private mount namespace an existing file cannot be shadowed, so one is
// an error rather than being overwritten.
func providePodFiles(sc *scratch, files []File) error {
	for _, f := range files {
		p := cleanImagePath(f.Path)
		host, err := sc.resolve(p)
		if err != nil {
			return err
		}
		if _, err := os.Lstat(host); err == nil {
			return fmt.Errorf("cannot provide %s: it already exists and pod mode cannot shadow it", p)
		}
		host, err = sc.ensureKind(p, false, kindOwnedFile)
		if err != nil {
			return err
		}
		if err := writeFileMode(host, f.Data, f.Mode.Perm()); err != nil {
			return fmt.Errorf("provide %s: %w", p, err)
		}
		if f.UID != 0 || f.GID != 0 {
			if err := os.Lchown(host, int(f.UID), int(f.GID)); err != nil {
				return fmt.Errorf("provide %s: %w", p, err)
			}
		}
	}
	return nil
}
