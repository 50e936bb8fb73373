package runner

import (
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// isolateMounts makes every mount of the helper's new mount namespace private, so that
// nothing the helper mounts propagates back to the namespace it was copied from (the host's).
func isolateMounts() error {
	err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "")
	if !errors.Is(err, unix.EINVAL) {
		if err != nil {
			return fmt.Errorf("make / rprivate: %w", err)
		}
		return nil
	}
	// EINVAL: "/" is not a mount point, so this process runs chrooted into a directory.
	if err := privateFromNamespaceRoot(); err != nil {
		return fmt.Errorf("make the mounts private (/ is not a mount point, as in a chroot): %w", err)
	}
	return nil
}

// privateFromNamespaceRoot makes the mounts private when this process is chrooted into a
// directory that is not a mount point, as CI tools run their jobs. There "/" cannot be made
// private (it is not a mount), and the mount that holds the chroot lies outside it, where it can
// be neither named nor made private from inside; yet whatever the helper mounts lands on that
// mount and, were it shared, would show up in the host's namespace. Joining its own mount
// namespace again (setns) takes this thread to the namespace's real root, where "/" is made
// recursively private; the thread then goes back into the chroot.
//
// setns needs a thread with a filesystem context of its own, so the thread unshares it and
// stays locked: the rest of the set-up, and the command's start, run from it. (A user
// namespace, whose mounts would be slaves, is not an option: the kernel refuses one to a
// chrooted process.)
func privateFromNamespaceRoot() error {
	runtime.LockOSThread() // never unlocked: this thread's root is no longer the others'
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare the filesystem context: %w", err)
	}
	chroot, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /: %w", err)
	}
	defer unix.Close(chroot)
	ns, err := unix.Open("/proc/thread-self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the mount namespace: %w", err)
	}
	defer unix.Close(ns)
	if err := unix.Setns(ns, unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("enter the mount namespace at its root: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make the namespace root rprivate: %w", err)
	}
	if err := unix.Fchdir(chroot); err != nil {
		return fmt.Errorf("return to the chroot: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("return to the chroot: %w", err)
	}
	return unix.Chdir("/")
}
