package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// scratch creates the entries a run needs in a root (mount points, provided
// files) and removes them again afterwards, restoring the times of the
// directories they were created in, so the root shows no trace of the
// runner itself.
type scratch struct {
	root    string
	created []createdEntry
	parents map[string]*parentTimes
	// restores put back what the run's mounts emulated without a mount
	// namespace replaced (see emulation); undo runs them newest first, after
	// reading the parents' times and before removing created entries.
	restores []func() error
}

// entryKind says what the runner created and therefore may remove.
type entryKind int

const (
	kindDir       entryKind = iota // removed only if still empty
	kindMountFile                  // empty file; removed only if still empty
	kindOwnedFile                  // a file the runner wrote; removed if still a file
)

type createdEntry struct {
	path string
	kind entryKind
}

// parentTimes remembers an existing directory's times before the runner
// added entries to it, and its mtime once set-up finished.
type parentTimes struct {
	atime, mtime unix.Timespec
	sealed       unix.Timespec
	untouched    bool // the command did not change the directory
	allRemoved   bool
}

func newScratch(root string) *scratch {
	return &scratch{root: root, parents: map[string]*parentTimes{}}
}

// resolve maps an image path to a host path inside the root, following
// symlinks as the image would see them, never out of the root.
func (s *scratch) resolve(imagePath string) (string, error) {
	p, err := securejoin.SecureJoin(s.root, imagePath)
	if err != nil {
		return "", fmt.Errorf("resolve %s in root %s: %w", imagePath, s.root, err)
	}
	return p, nil
}

// ensure returns the host path of imagePath, creating it (a directory, or
// an empty file when dir is false) and any missing parents if needed. An
// existing entry of the wrong type is an error.
func (s *scratch) ensure(imagePath string, dir bool) (string, error) {
	return s.ensureKind(imagePath, dir, kindMountFile)
}

func (s *scratch) ensureKind(imagePath string, dir bool, fileKind entryKind) (string, error) {
	p, err := s.resolve(imagePath)
	if err != nil {
		return "", err
	}
	fi, err := os.Lstat(p)
	switch {
	case err == nil && dir && !fi.IsDir():
		return "", fmt.Errorf("cannot provide %s: %s exists in the image and is not a directory", imagePath, p)
	case err == nil && !dir && fi.IsDir():
		return "", fmt.Errorf("cannot provide %s: %s exists in the image and is a directory", imagePath, p)
	case err == nil:
		return p, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("cannot provide %s: %w", imagePath, err)
	}
	if err := s.mkdirParents(p, imagePath); err != nil {
		return "", err
	}
	if err := s.noteParent(filepath.Dir(p)); err != nil {
		return "", err
	}
	if dir {
		if err := os.Mkdir(p, 0o755); err != nil {
			return "", fmt.Errorf("cannot provide %s: %w", imagePath, err)
		}
		s.created = append(s.created, createdEntry{p, kindDir})
		return p, nil
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return "", fmt.Errorf("cannot provide %s: %w", imagePath, err)
	}
	f.Close()
	s.created = append(s.created, createdEntry{p, fileKind})
	return p, nil
}

// mkdirParents creates the missing directories between the root and p.
// SecureJoin already resolved every existing component, so each one that
// exists is a real directory inside the root.
func (s *scratch) mkdirParents(p, imagePath string) error {
	rel, err := filepath.Rel(s.root, filepath.Dir(p))
	if err != nil || rel == "." {
		return err
	}
	err = makeDirs(s.root, rel, os.Lstat, func(dir string) error {
		if err := s.noteParent(filepath.Dir(dir)); err != nil {
			return err
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		s.created = append(s.created, createdEntry{dir, kindDir})
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot provide %s: %w", imagePath, err)
	}
	return nil
}

// noteParent records dir's times before the first entry is added to it,
// unless the runner created dir itself.
func (s *scratch) noteParent(dir string) error {
	if _, ok := s.parents[dir]; ok || s.isCreated(dir) {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return fmt.Errorf("stat %s: %w", dir, err)
	}
	s.parents[dir] = &parentTimes{atime: st.Atim, mtime: st.Mtim}
	return nil
}

func (s *scratch) isCreated(p string) bool {
	for _, c := range s.created {
		if c.path == p {
			return true
		}
	}
	return false
}

// seal records the parents' mtimes once set-up is done, so undo can tell
// whether the command changed those directories itself.
func (s *scratch) seal() {
	for dir, pt := range s.parents {
		var st unix.Stat_t
		if unix.Lstat(dir, &st) == nil {
			pt.sealed = st.Mtim
		}
	}
}

// undo removes what ensure created, newest first, and restores the times of
// parents the command left alone. Entries the command changed (a created
// directory it wrote into) stay: they are now the command's doing.
func (s *scratch) undo() error {
	for _, pt := range s.parents {
		pt.allRemoved = true
	}
	for dir, pt := range s.parents {
		var st unix.Stat_t
		pt.untouched = unix.Lstat(dir, &st) == nil && st.Mtim == pt.sealed
	}
	var errs []error
	for i := len(s.restores) - 1; i >= 0; i-- {
		if err := s.restores[i](); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(s.created) - 1; i >= 0; i-- {
		c := s.created[i]
		removed, err := removeCreated(c)
		if err != nil {
			errs = append(errs, err)
		}
		if !removed {
			if pt, ok := s.parents[filepath.Dir(c.path)]; ok {
				pt.allRemoved = false
			}
		}
	}
	for dir, pt := range s.parents {
		if !pt.untouched || !pt.allRemoved {
			continue
		}
		ts := []unix.Timespec{pt.atime, pt.mtime}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, dir, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			errs = append(errs, fmt.Errorf("restore times of %s: %w", dir, err))
		}
	}
	s.created, s.parents, s.restores = nil, map[string]*parentTimes{}, nil
	return errors.Join(errs...)
}

// onUndo registers restore to run when undo runs, before earlier ones.
func (s *scratch) onUndo(restore func() error) {
	s.restores = append(s.restores, restore)
}

// removeCreated removes one created entry if it is still what the runner
// made. It retries briefly on EBUSY: a mount point may stay busy for a
// moment after its mount namespace died.
func removeCreated(c createdEntry) (bool, error) {
	fi, err := os.Lstat(c.path)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("clean up %s: %w", c.path, err)
	}
	switch c.kind {
	case kindDir:
		if !fi.IsDir() {
			return false, nil
		}
	case kindMountFile:
		if !fi.Mode().IsRegular() || fi.Size() != 0 {
			return false, nil
		}
	case kindOwnedFile:
		if !fi.Mode().IsRegular() {
			return false, nil
		}
	}
	for attempt := 0; ; attempt++ {
		err = os.Remove(c.path)
		if err == nil {
			return true, nil
		}
		if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
			return false, nil // the command put something there: keep it
		}
		if !errors.Is(err, unix.EBUSY) || attempt == 50 {
			return false, fmt.Errorf("clean up %s: %w", c.path, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
