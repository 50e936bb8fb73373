package runner

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// PodIsolation reports whether a pod-mode run can have a mount namespace of
// its own here, as Mounts, Tmpfs, secret Files and NetworkNone need: it
// tries unshare(CLONE_NEWNS) on a thread of its own, which ends with the
// namespace. nil means it can; otherwise the error says why not (EPERM: the
// process lacks CAP_SYS_ADMIN, or a seccomp or security policy forbids it),
// and Spec.EmulateMounts can provide the mounts instead.
func PodIsolation() error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread exits with this goroutine, and its
		// namespace with it.
		runtime.LockOSThread()
		errc <- unix.Unshare(unix.CLONE_NEWNS)
	}()
	if err := <-errc; err != nil {
		return fmt.Errorf("unshare(CLONE_NEWNS): %w", err)
	}
	return nil
}
