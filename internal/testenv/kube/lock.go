package kube

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// lockFile holds an exclusive flock on path (created if needed), waiting for
// other processes that hold it (calling onWait first, if not nil), until the
// returned function is called.
func lockFile(path string, onWait func()) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("kube: open lock %s: %w", path, err)
	}
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
		return func() { f.Close() }, nil
	}
	if onWait != nil {
		onWait()
	}
	for {
		if err = unix.Flock(int(f.Fd()), unix.LOCK_EX); err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("kube: lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil // closing the file releases the lock
}
