package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// dir is the registry's own directory: its config, log and storage.
func (r *Registry) dir() string { return filepath.Dir(r.LogFile) }

// StorageDir is the root of the registry's filesystem storage (repositories and blobs).
func (r *Registry) StorageDir() string {
	return filepath.Join(r.dir(), "data", "docker", "registry", "v2")
}

// BlobPath is the file the registry keeps blob d's content in (shared by every repository).
func (r *Registry) BlobPath(d v1.Hash) string {
	return filepath.Join(r.StorageDir(), "blobs", d.Algorithm, d.Hex[:2], d.Hex, "data")
}

// Uploads is the registry's unfinished uploads (all repositories): each one's data file and
// its size so far. A push in progress has one per blob it is sending.
func (r *Registry) Uploads() map[string]int64 {
	out := map[string]int64{}
	uploads, _ := filepath.Glob(filepath.Join(r.StorageDir(), "repositories", "*", "*", "_uploads", "*", "data"))
	more, _ := filepath.Glob(filepath.Join(r.StorageDir(), "repositories", "*", "_uploads", "*", "data"))
	for _, u := range append(uploads, more...) {
		if fi, err := os.Stat(u); err == nil {
			out[u] = fi.Size()
		}
	}
	return out
}

// Kill stops the registry at once (SIGKILL), as a crashed or evicted registry stops: open
// connections are reset and new ones refused until Restart. It may be called from any
// goroutine.
func (r *Registry) Kill() error {
	if r.cmd == nil || r.cmd.Process == nil {
		return fmt.Errorf("testenv: Registry.Kill: the registry on %s is not running", r.Addr)
	}
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("testenv: kill registry %s: %w", r.Addr, err)
	}
	// Wait for the port to close (the process is reaped by start's goroutine).
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && r.ping(r.pingClient()) {
		time.Sleep(20 * time.Millisecond)
	}
	r.cmd = nil
	return nil
}

// Restart starts the registry again on the same address, with the same configuration and
// storage, after Kill. It is stopped when t ends: give it the test that started the registry.
// It may be called from any goroutine.
func (r *Registry) Restart(t testing.TB) error {
	if r.cmd != nil {
		return fmt.Errorf("testenv: Registry.Restart: the registry on %s is still running", r.Addr)
	}
	var err error
	// The port may take a moment to be free again.
	for attempt := 0; attempt < 20; attempt++ {
		if err = r.start(t, filepath.Join(r.dir(), "config.yml")); err == nil {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("testenv: restart registry on %s: %w", r.Addr, err)
}
