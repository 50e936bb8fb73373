package snapshot

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// remover deletes trees under a root while keeping ignored paths and the directories that
// lead to them.
type remover struct {
	ignored func(string) bool
	// keep, when set, spares paths written by the layer being extracted.
	keep func(string) bool
}

// removeTree deletes host (image path img) and everything below it. It reports kept=true when
// something below had to stay (an ignored path), in which case the directory itself stays.
func (r *remover) removeTree(img, host string) (kept bool, err error) {
	if r.ignored(img) {
		return true, nil
	}
	var st unix.Stat_t
	if err := unix.Lstat(host, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, &os.PathError{Op: "lstat", Path: host, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if err := unix.Unlink(host); err != nil && !errors.Is(err, unix.ENOENT) {
			return false, &os.PathError{Op: "unlink", Path: host, Err: err}
		}
		return false, nil
	}
	kept, err = r.emptyDir(img, host)
	if err != nil || kept {
		return kept, err
	}
	if err := unix.Rmdir(host); err != nil && !errors.Is(err, unix.ENOENT) {
		return false, &os.PathError{Op: "rmdir", Path: host, Err: err}
	}
	return false, nil
}

// emptyDir deletes the content of a directory except ignored (and kept) paths.
func (r *remover) emptyDir(img, host string) (kept bool, err error) {
	names, err := readDirNames(host)
	if err != nil {
		return false, err
	}
	for _, name := range names {
		child := childPath(img, name)
		childHost := joinHost(host, name)
		if r.keep != nil && r.keep(child) {
			kept = true
			// A kept directory may still hold lower content that must go.
			if fi, err := os.Lstat(childHost); err == nil && fi.IsDir() {
				if _, err := r.emptyDir(child, childHost); err != nil {
					return kept, err
				}
			}
			continue
		}
		k, err := r.removeTree(child, childHost)
		if err != nil {
			return kept, err
		}
		kept = kept || k
	}
	return kept, nil
}

// Clear deletes everything under root except ignored paths (and the directories leading to
// them). Used between stages in pod mode.
func Clear(root string, ignore IgnoreFunc) error {
	r := &remover{ignored: func(p string) bool { return p != "/" && ignore != nil && ignore(p) }}
	if _, err := r.emptyDir("/", root); err != nil {
		return fmt.Errorf("clearing %s: %w", root, err)
	}
	return nil
}
