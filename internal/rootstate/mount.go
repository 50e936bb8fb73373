package rootstate

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/internal/mountinfo"
	"golang.org/x/sys/unix"
)

// Mount is an overlay mount of a chain of layers at a root.
type Mount struct {
	target  string
	scratch string // holds the upper and work directories
}

// maxMountData is what the kernel accepts as mount options (one page).
const maxMountData = 4000

// Mount mounts the chain (bottom layer first, each one Has) read-only under a fresh upper
// directory at target, which must be an empty directory: the root then holds the chain's
// files and the changes made to it go to the upper directory, removed by Unmount.
func (s *Store) Mount(target string, chain []v1.Hash) (*Mount, error) {
	if len(chain) == 0 {
		return nil, errors.New("no layers to mount")
	}
	lowers := make([]string, len(chain))
	for i, d := range chain {
		lowers[len(chain)-1-i] = s.Dir(d) // overlayfs lists the top layer first
	}
	scratch, err := os.MkdirTemp(filepath.Join(s.dir, "mounts"), "m-")
	if err != nil {
		return nil, err
	}
	upper, work := filepath.Join(scratch, "upper"), filepath.Join(scratch, "work")
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			os.RemoveAll(scratch)
			return nil, err
		}
	}
	data := "lowerdir=" + strings.Join(lowers, ":") + ",upperdir=" + upper + ",workdir=" + work
	if strings.ContainsAny(s.dir, ":,") || len(data)+len(",index=on") > maxMountData {
		os.RemoveAll(scratch)
		return nil, fmt.Errorf("overlay of %d layers: the layer paths do not fit in mount options", len(chain))
	}
	// index=on keeps hardlinks whole when a RUN writes one of the names, as in a plain
	// directory; kernels without it mount without.
	err = unix.Mount("overlay", target, "overlay", 0, data+",index=on")
	if err != nil {
		err = unix.Mount("overlay", target, "overlay", 0, data)
	}
	if err != nil {
		os.RemoveAll(scratch)
		return nil, fmt.Errorf("mounting an overlay at %s: %w", target, err)
	}
	return &Mount{target: target, scratch: scratch}, nil
}

// Target is where the overlay is mounted.
func (m *Mount) Target() string { return m.target }

// Unmount removes the overlay (lazily when something still uses it) and its upper directory.
func (m *Mount) Unmount() error {
	if err := unix.Unmount(m.target, 0); err != nil {
		if err := unix.Unmount(m.target, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmounting the overlay at %s: %w", m.target, err)
		}
	}
	return os.RemoveAll(m.scratch)
}

// UnmountStale unmounts overlays a build that ended without unmounting (killed) left at
// target, made by a store (their upper directory is in a store's "mounts").
func UnmountStale(target string) error {
	for range 8 {
		if !staleAt(target) {
			return nil
		}
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmounting a stale overlay at %s: %w", target, err)
		}
	}
	return nil
}

// staleAt reports whether target is an overlay mount point whose upper directory is a store's.
func staleAt(target string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(tail) < 3 || tail[0] != "overlay" {
			continue
		}
		if mountinfo.Unescape(fields[4]) == target && strings.Contains(tail[2], "/"+format+"/mounts/m-") {
			return true
		}
	}
	return false
}
