// Package dirspread asks the file system to place each new directory of a tree where it has
// room, rather than next to its parent: ext4's "top directory" flag (chattr +T), the Orlov
// policy mke2fs gives a file system's root.
//
// Why a builder wants this: on ext4 without a journal, an inode freed in the last minute (five,
// while its table block is dirty) is not reused, and every allocation in its block group scans
// past all of them (the kernel's recently_deleted check). A pod started right after another
// pod's root was deleted, or a stage unpacked right after the previous one was cleared, lands in
// the same groups, and creating each file then costs about a millisecond instead of 30 µs: a
// Debian base took 3 s instead of 0.5 s on the bench machine.
//
// The flag alone is not enough. ext4 starts its search for such a directory's group at a hash
// of its name and takes the group with the fewest directories, which a deleted tree has just
// made of its own: every /usr would go back where the last one was. So Mkdir creates each
// directory under a random name, renamed into place, with the flag set on it too so that its
// own subdirectories are placed the same way. A freed group is still picked now and then, but
// it then receives one directory's files (tens) instead of a whole /usr/share (thousands).
// Traced on the bench machine, a pod's warm rebuild spent 0.07-1.4 s allocating inodes with
// only the top two levels placed so, and 0.17-0.28 s with every directory (one rebuild in six
// excepted, whose one directory of 2,000 files met a freed group).
//
// Other file systems (XFS, Btrfs, tmpfs, overlayfs over them) refuse or ignore the flag;
// nothing changes there, and no error is ever returned for it. On a journaled ext4 the
// placement neither helped nor hurt a Debian base's unpacking (0.18-0.6 s either way).
package dirspread

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// topDir is FS_TOPDIR_FL from linux/fs.h (x/sys/unix does not name it).
const topDir = 0x00020000

// Children sets the flag on dir and returns a function that puts the directory's flags back
// as they were (a no-op when nothing was changed). It never fails: the flag is a placement
// hint, and a file system that has no such hint builds the same tree, only without it.
func Children(dir string) (restore func()) {
	nothing := func() {}
	f, err := os.Open(dir)
	if err != nil {
		return nothing
	}
	defer f.Close()
	fd := int(f.Fd())
	flags, err := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
	if err != nil || flags&topDir != 0 {
		return nothing
	}
	if unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, flags|topDir) != nil {
		return nothing
	}
	return func() {
		if f, err := os.Open(dir); err == nil {
			unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, flags)
			f.Close()
		}
	}
}

// Set reports whether dir has the flag (false where the file system cannot say).
func Set(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	flags, err := unix.IoctlGetInt(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	return err == nil && flags&topDir != 0
}

// Mkdir creates the directory path (which must not exist) with mode perm, as unix.Mkdir does
// and with its errors, but under a random name in the same parent first, then renamed without
// replacing anything (see the package comment). The new directory has the flag too, so that
// its own subdirectories are spread when made with Mkdir: Clear it once the tree is made, so
// that no flag outlives the build. Use it for children of a directory Set reports.
func Mkdir(path string, perm uint32) error {
	tmp := filepath.Join(filepath.Dir(path), ".kiln-mkdir-"+strconv.FormatUint(rand.Uint64(), 36))
	if err := unix.Mkdir(tmp, perm); err != nil {
		return unix.Mkdir(path, perm)
	}
	Children(tmp)
	err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, path, unix.RENAME_NOREPLACE)
	if err == nil {
		return nil
	}
	unix.Rmdir(tmp)
	if err == unix.EEXIST {
		return err
	}
	return unix.Mkdir(path, perm) // no RENAME_NOREPLACE here: the plain way
}

// Clear removes the flag from dir, where it is set.
func Clear(dir string) {
	f, err := os.Open(dir)
	if err != nil {
		return
	}
	defer f.Close()
	if flags, err := unix.IoctlGetInt(int(f.Fd()), unix.FS_IOC_GETFLAGS); err == nil && flags&topDir != 0 {
		unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, flags&^topDir)
	}
}
