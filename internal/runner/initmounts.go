package runner

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// setupPod gives a pod-mode run its mounts, in the helper's private mount
// namespace; the root stays this process's own.
func setupPod(is *initSpec) error {
	if err := isolateMounts(); err != nil {
		return err
	}
	if err := provide(is); err != nil {
		return err
	}
	if is.MakeDir {
		return makeWorkdir(is.Dir, is.UID, is.GID)
	}
	return nil
}

// setupRoot builds the run's view of the filesystem inside the helper's
// private mount namespace and makes is.Root the root directory.
func setupRoot(is *initSpec) error {
	if err := isolateMounts(); err != nil {
		return err
	}
	// A mount of its own lets the root be pivoted into.
	if err := unix.Mount(is.Root, is.Root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s onto itself: %w", is.Root, err)
	}
	if err := unix.Mount("proc", is.Proc, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount proc on %s: %w", is.Proc, err)
	}
	if err := mountSys(is.Sys); err != nil {
		return err
	}
	if err := mountDev(is.Dev, is.DevFiles); err != nil {
		return err
	}
	if err := provide(is); err != nil {
		return err
	}
	if err := enterRoot(is.Root); err != nil {
		return err
	}
	if is.MakeDir {
		return makeWorkdir(is.Dir, is.UID, is.GID)
	}
	return nil
}

// mountSys mounts a read-only sysfs, or where that is refused (a user
// namespace without its own network namespace) a read-only bind of /sys.
func mountSys(target string) error {
	const flags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if err := unix.Mount("sysfs", target, "sysfs", flags, ""); err == nil {
		return nil
	}
	if err := unix.Mount("/sys", target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("mount sysfs on %s: %w", target, err)
	}
	if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|flags, ""); err != nil {
		return fmt.Errorf("make %s read-only: %w", target, err)
	}
	return nil
}

// mountDev gives the run a minimal private /dev: a tmpfs with bind mounts
// of the host's harmless device nodes (binds work where mknod would not),
// the usual symlinks, a new devpts instance, a tmpfs /dev/shm, and the
// provided files that live below /dev (heredoc scripts at /dev/pipes).
func mountDev(target string, files []devFile) error {
	if err := unix.Mount("tmpfs", target, "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", target, err)
	}
	for _, name := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		host := "/dev/" + name
		if _, err := os.Stat(host); err != nil {
			continue // the host lacks it; the run will too
		}
		node := filepath.Join(target, name)
		f, err := os.OpenFile(node, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666)
		if err != nil {
			return fmt.Errorf("create %s: %w", node, err)
		}
		f.Close()
		if err := unix.Mount(host, node, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s on %s: %w", host, node, err)
		}
	}
	links := [][2]string{
		{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
		{"pts/ptmx", "ptmx"},
	}
	for _, l := range links {
		if err := os.Symlink(l[0], filepath.Join(target, l[1])); err != nil {
			return fmt.Errorf("create /dev/%s: %w", l[1], err)
		}
	}
	pts := filepath.Join(target, "pts")
	if err := os.Mkdir(pts, 0o755); err != nil {
		return fmt.Errorf("create /dev/pts: %w", err)
	}
	ptsFlags := uintptr(unix.MS_NOSUID | unix.MS_NOEXEC)
	if err := unix.Mount("devpts", pts, "devpts", ptsFlags, "newinstance,ptmxmode=0666,mode=0620,gid=5"); err != nil {
		// gid 5 may not be mapped in a user namespace.
		if err := unix.Mount("devpts", pts, "devpts", ptsFlags, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
			return fmt.Errorf("mount devpts on %s: %w", pts, err)
		}
	}
	shm := filepath.Join(target, "shm")
	if err := os.Mkdir(shm, 0o755); err != nil {
		return fmt.Errorf("create /dev/shm: %w", err)
	}
	if err := unix.Mount("shm", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=65536k"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", shm, err)
	}
	for _, f := range files {
		if err := writeDevFile(target, f); err != nil {
			return err
		}
	}
	return nil
}

// writeDevFile writes one provided file into the /dev tmpfs. Nothing else
// exists there yet, so no symlink can redirect it.
func writeDevFile(devRoot string, f devFile) error {
	p := filepath.Join(devRoot, filepath.Clean("/"+f.Rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("provide /dev/%s: %w", f.Rel, err)
	}
	if err := os.WriteFile(p, f.Data, 0o600); err != nil {
		return fmt.Errorf("provide /dev/%s: %w", f.Rel, err)
	}
	// WriteFile's mode is filtered by the umask; set it exactly.
	if err := os.Chmod(p, os.FileMode(f.Mode)); err != nil {
		return fmt.Errorf("provide /dev/%s: %w", f.Rel, err)
	}
	return nil
}

// enterRoot makes root the process's root directory. pivot_root detaches
// the host's filesystem entirely; chroot is the fallback where pivot_root
// is impossible (a root on rootfs/initramfs).
func enterRoot(root string) error {
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("chdir %s: %w", root, err)
	}
	if err := unix.PivotRoot(".", "."); err == nil {
		// The old root is now stacked on "/"; "." resolves to it.
		if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
			return fmt.Errorf("detach the host root: %w", err)
		}
	} else if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot %s: %w", root, err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir / in %s: %w", root, err)
	}
	return nil
}
