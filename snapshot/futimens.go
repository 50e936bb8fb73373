package snapshot

import (
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// futimens sets a file's access and modification times, in nanoseconds, through its descriptor
// (utimensat with a NULL path, which x/sys/unix does not wrap).
func futimens(fd int, host string, atime, mtime time.Time) error {
	ts := [2]unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if errno != 0 {
		return &os.PathError{Op: "futimens", Path: host, Err: errno}
	}
	return nil
}
