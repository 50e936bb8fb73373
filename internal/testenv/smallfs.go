package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// SmallFS is a size-limited tmpfs mounted for one test, to make a build run out of space.
type SmallFS struct {
	// Dir is the mount point.
	Dir string
	// filler is the file Fill writes to take up space.
	filler string
}

// MountSmallFS mounts a tmpfs of size bytes on a fresh directory and unmounts it when the test
// ends (before the directory is removed). It needs root.
func MountSmallFS(t testing.TB, size int64) *SmallFS {
	t.Helper()
	requireRoot(t, "MountSmallFS")
	dir := t.TempDir()
	opts := fmt.Sprintf("size=%d,mode=0755", size)
	if err := unix.Mount("kiln-small", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		t.Fatalf("testenv: mount a %d-byte tmpfs on %s: %v", size, dir, err)
	}
	// Registered after t.TempDir, so it runs before the directory's removal.
	t.Cleanup(func() { unmountSmallFS(t, dir) })
	return &SmallFS{Dir: dir, filler: filepath.Join(dir, ".kiln-test-filler")}
}

// unmountSmallFS unmounts dir, lazily if something still holds it (a process the test left).
func unmountSmallFS(t testing.TB, dir string) {
	err := unix.Unmount(dir, 0)
	if errors.Is(err, unix.EBUSY) {
		t.Logf("testenv: %s is busy; detaching it", dir)
		err = unix.Unmount(dir, unix.MNT_DETACH)
	}
	if err != nil && !errors.Is(err, unix.EINVAL) { // EINVAL: not mounted any more
		// Removing the directory would delete what is still mounted there.
		panic(fmt.Sprintf("testenv: cannot unmount %s: %v", dir, err))
	}
}

// Free returns the bytes still available on the file system.
func (s *SmallFS) Free(t testing.TB) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.Dir, &st); err != nil {
		t.Fatalf("testenv: statfs %s: %v", s.Dir, err)
	}
	return int64(st.Bavail) * st.Bsize
}

// Fill writes a filler file so that only about leave bytes stay free.
func (s *SmallFS) Fill(t testing.TB, leave int64) {
	t.Helper()
	s.Unfill(t)
	n := s.Free(t) - leave
	if n <= 0 {
		return
	}
	f, err := os.Create(s.filler)
	if err != nil {
		t.Fatalf("testenv: fill %s: %v", s.Dir, err)
	}
	defer f.Close()
	// tmpfs allocates pages on write: fallocate does the same without copying.
	if err := unix.Fallocate(int(f.Fd()), 0, 0, n); err != nil {
		t.Fatalf("testenv: fill %s with %d bytes: %v", s.Dir, n, err)
	}
}

// Unfill removes the filler file, freeing its space.
func (s *SmallFS) Unfill(t testing.TB) {
	t.Helper()
	if err := os.Remove(s.filler); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("testenv: unfill %s: %v", s.Dir, err)
	}
}

// Grow resizes the file system to size bytes (remount), keeping its content.
func (s *SmallFS) Grow(t testing.TB, size int64) {
	t.Helper()
	opts := fmt.Sprintf("size=%d", size)
	if err := unix.Mount("kiln-small", s.Dir, "tmpfs", unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		t.Fatalf("testenv: grow %s to %d bytes: %v", s.Dir, size, err)
	}
}
