package runner

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// bindMount mounts a Spec.Mount (host paths on both sides, the target
// resolved inside the root beforehand) in the helper's mount namespace:
// recursively, private, and read-only when asked.
func bindMount(m Mount) error {
	if err := unix.Mount(m.Source, m.Target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mount %s on %s: %w", m.Source, m.Target, err)
	}
	// The namespace is rprivate already; say so for this mount too, so
	// nothing mounted below it during the run reaches the host.
	if err := unix.Mount("", m.Target, "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make %s rprivate: %w", m.Target, err)
	}
	if !m.ReadOnly {
		return nil
	}
	if err := makeReadOnly(m.Target); err != nil {
		return fmt.Errorf("make the mount of %s on %s read-only: %w", m.Source, m.Target, err)
	}
	return nil
}

// makeReadOnly makes the mount at target and every mount below it
// read-only, leaving their other flags (nosuid, nodev, noexec) as they are.
// Kernels before 5.12 lack mount_setattr: there only the top mount is
// remounted, with its current flags kept.
func makeReadOnly(target string) error {
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	err := unix.MountSetattr(unix.AT_FDCWD, target, unix.AT_RECURSIVE|unix.AT_SYMLINK_NOFOLLOW, attr)
	if !errors.Is(err, unix.ENOSYS) {
		return err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(target, &st); err != nil {
		return err
	}
	flags := uintptr(unix.MS_REMOUNT | unix.MS_BIND | unix.MS_RDONLY)
	for _, f := range [][2]int64{
		{unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV}, {unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME}, {unix.ST_NODIRATIME, unix.MS_NODIRATIME}, {unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if st.Flags&f[0] != 0 {
			flags |= uintptr(f[1])
		}
	}
	return unix.Mount("", target, "", flags, "")
}

// makeWorkdir creates the working directory dir inside the entered root,
// as ensureWorkdir does on the host side (mode 0755, owned by uid:gid),
// for a directory inside a mount. Symlinks resolve inside the root: it is
// the process's root now, so os.Stat follows them safely.
func makeWorkdir(dir string, uid, gid uint32) error {
	if err := makeDirs("/", dir, os.Stat, ownedDir(uid, gid)); err != nil {
		return fmt.Errorf("working directory %s: %w", dir, err)
	}
	return nil
}
