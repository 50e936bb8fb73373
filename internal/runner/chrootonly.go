package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// chrootDevices are the character devices a chroot-only run gets in /dev (name, major, minor),
// the ones a container runtime gives every container.
var chrootDevices = []struct {
	name         string
	major, minor uint32
}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}}

// RunChrooted runs s with s.Root as its root by chroot(2) alone, in this process's mount, pid
// and network namespaces: for a caller that may chroot and create device nodes
// (CAP_SYS_CHROOT, CAP_MKNOD: every container has them) but may not create namespaces (a build
// pod without CAP_SYS_ADMIN). See ChrootOnly for what it needs and the package documentation
// for how it differs from directory mode: the command gets device nodes in /dev and copies of
// the host's /etc/hosts and /etc/resolv.conf, all removed again afterwards, but no /proc and no
// /sys. Mounts, Tmpfs, secret Files and NetworkNone need namespaces and are refused. It runs in
// a process group of its own, killed when the command exits or ctx ends, as pod mode's.
func RunChrooted(ctx context.Context, s Spec) (err error) {
	if len(s.Args) == 0 || s.Args[0] == "" {
		return errors.New("runner: no command to run")
	}
	if needsNamespace(s) {
		return errors.New("runner: a chroot-only run cannot provide mounts, tmpfs, secret files or --network=none: they need namespaces of its own")
	}
	root, err := resolveRoot(s.Root)
	if err != nil {
		return err
	}
	if root == "/" {
		return errors.New("runner: a chroot-only run needs a root other than \"/\"")
	}
	s.Env = dedupEnv(s.Env)
	dir := cleanImagePath(s.Dir)
	if err := ensureWorkdir(root, dir, s.UID, s.GID); err != nil {
		return err
	}
	sc := newScratch(root)
	defer func() {
		if uerr := sc.undo(); uerr != nil {
			err = errors.Join(err, uerr)
		}
	}()
	if err := provideChrooted(sc, s); err != nil {
		sc.seal() // nothing ran: undo restores every parent's times
		return err
	}
	sc.seal()
	argv0, err := lookPathIn(sc, s.Args[0], s.Env)
	if err != nil {
		return err
	}
	return execChrooted(ctx, s, root, argv0, dir)
}

// provideChrooted puts /dev's devices, /etc/hosts, /etc/resolv.conf and s.Files in the root.
func provideChrooted(sc *scratch, s Spec) error {
	dev, err := sc.ensure("/dev", true)
	if err != nil {
		return err
	}
	if err := sc.noteParent(dev); err != nil {
		return err
	}
	for _, d := range chrootDevices {
		p := filepath.Join(dev, d.name)
		if _, err := os.Lstat(p); err == nil {
			continue // the image's own (a side root has none: /dev is ignored in a pod)
		}
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor))); err != nil {
			return fmt.Errorf("create /dev/%s in the root: %w", d.name, err)
		}
		if err := os.Chmod(p, 0o666); err != nil { // past the umask
			return err
		}
		sc.onUndo(func() error { return removeIfDevice(p) })
	}
	var files []File
	for _, f := range []string{"/etc/hosts", "/etc/resolv.conf"} {
		host, err := sc.resolve(f)
		if err != nil {
			return err
		}
		if _, err := os.Lstat(host); err == nil {
			continue // the image's own stays what the command sees
		}
		data, err := os.ReadFile(f)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("read %s: %w", f, err)
		}
		files = append(files, File{Path: f, Data: data, Mode: 0o644})
	}
	return providePodFiles(sc, append(files, s.Files...))
}

// removeIfDevice removes a device node the run was given, if it still is one.
func removeIfDevice(p string) error {
	fi, err := os.Lstat(p)
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return os.Remove(p)
}

// lookPathIn finds name in the PATH of env inside the root (symlinks resolved in it) and
// returns its image path.
func lookPathIn(sc *scratch, name string, env []string) (string, error) {
	return lookPathWith(name, env, func(candidate string) bool {
		host, err := sc.resolve(candidate)
		return err == nil && isExecutable(host)
	})
}

// execChrooted starts the command chrooted into root, in dir, in a process group of its own,
// and waits for it; what it left running dies with it.
func execChrooted(ctx context.Context, s Spec, root, argv0, dir string) error {
	cmd := exec.CommandContext(ctx, argv0)
	cmd.Path = argv0 // an image path: the child resolves it after chroot
	cmd.Args = s.Args
	cmd.Env = s.Env
	cmd.Dir = dir
	return runInGroup(ctx, s, cmd, &syscall.SysProcAttr{Chroot: root}, s.Args[0]+" chrooted into "+root)
}

// ChrootOnly reports whether RunChrooted can work with roots below dir, and if not, why: it
// needs root's chroot(2) (CAP_SYS_CHROOT), and device nodes it creates below dir must be
// usable (CAP_MKNOD, a file system not mounted nodev, a device cgroup allowing /dev/null).
// The probe chroots a child into a scratch directory below dir and removes it afterwards.
func ChrootOnly(dir string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("chroot needs root (running as uid %d)", os.Geteuid())
	}
	probe, err := os.MkdirTemp(dir, "kiln-chroot-probe-")
	if err != nil {
		return fmt.Errorf("chroot probe: %w", err)
	}
	defer os.RemoveAll(probe)
	null := filepath.Join(probe, "null")
	if err := unix.Mknod(null, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		return fmt.Errorf("create a device node in %s: %w", dir, err)
	}
	f, err := os.OpenFile(null, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("device nodes in %s are not usable (a nodev mount?): %w", dir, err)
	}
	f.Close()
	// The child chroots, then fails to exec a program the probe root lacks: ENOENT says the
	// chroot itself worked, EPERM that it may not chroot.
	cmd := exec.Command("/kiln-chroot-probe")
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: probe}
	err = cmd.Run()
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err == nil {
		return errors.New("chroot probe: an absent program ran")
	}
	return fmt.Errorf("chroot into %s: %w", probe, err)
}
