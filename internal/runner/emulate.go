package runner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// emulation provides a pod-mode run's Mounts, Tmpfs and secret Files
// without a mount namespace (Spec.EmulateMounts). For the run only, each
// target holds the thing a mount would show:
//
//   - a writable Mount (a cache directory, a copy the run may change): the
//     source itself, renamed to the target and back after the run, so what
//     the run wrote is the source's new content; where the two lie on
//     different file systems (a cache on a volume), a symlink to the source
//     instead, which a tool that checks for a real directory, or replaces
//     the link, can tell apart;
//   - a ReadOnly or Discard Mount: a copy of the source, removed after the
//     run, so the source never changes (read-only is not enforced: what the
//     run writes there is discarded with the copy);
//   - a socket Mount (an ssh agent): a socket of its own at the target, with
//     the source's mode and owner, relaying every connection to the source;
//   - a Tmpfs: an empty directory (mode 1777, no size limit), removed after;
//   - a secret File: written at the target with its mode and owner, so it
//     passes through the container's writable layer, and removed after.
//
// What was at a target before is renamed aside, to a hidden sibling that
// the run can see, and put back after it. The scratch creates missing
// parents and removes them again, restores the parents' times, and runs the
// restores registered here newest first, whatever way the run ended. A
// rename cannot move a mount point of the pod, nor, on an overlay without
// redirect_dir, a directory from the container image's own layers: a target
// there is an error.
type emulation struct {
	ctx    context.Context
	sc     *scratch
	points []mountPoint
	// moved maps a source renamed to a target to that target, so a second
	// mount of the same source links to it.
	moved map[string]string
}

func newEmulation(ctx context.Context, sc *scratch) *emulation {
	return &emulation{ctx: ctx, sc: sc, moved: map[string]string{}}
}

// provide puts s's secret Files, Mounts and Tmpfs in place. On an error,
// what it did so far is undone with the scratch.
func (e *emulation) provide(s Spec) error {
	for _, f := range s.Files {
		if f.Secret {
			if err := e.file(f); err != nil {
				return err
			}
		}
	}
	for _, m := range s.Mounts {
		if err := e.mount(m); err != nil {
			return fmt.Errorf("mount %s at %s without a mount namespace: %w", m.Source, cleanImagePath(m.Target), err)
		}
	}
	for _, t := range s.Tmpfs {
		if err := e.tmpfs(t); err != nil {
			return fmt.Errorf("tmpfs at %s without a mount namespace: %w", cleanImagePath(t.Target), err)
		}
	}
	return nil
}

// slot makes room at image path img: it resolves img inside the root,
// refuses it where it overlaps another target of the run, creates missing
// parents and moves what is there aside. It returns the host path, free.
func (e *emulation) slot(img string) (string, error) {
	host, err := e.sc.resolve(img)
	if err != nil {
		return "", err
	}
	p := mountPoint{img, host}
	if err := checkOverlap(p, e.points, e.sc.root); err != nil {
		return "", err
	}
	e.points = append(e.points, p)
	if err := e.sc.mkdirParents(host, img); err != nil {
		return "", err
	}
	if err := e.sc.noteParent(filepath.Dir(host)); err != nil {
		return "", err
	}
	return host, e.moveAside(host, img)
}

// moveAside renames what is at host to a hidden sibling, put back by undo.
func (e *emulation) moveAside(host, img string) error {
	if _, err := os.Lstat(host); errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	aside, err := asideName(host)
	if err != nil {
		return err
	}
	if err := os.Rename(host, aside); err != nil {
		return fmt.Errorf("cannot move %s aside for the run: %w", img, renameHint(err))
	}
	e.sc.onUndo(func() error { return restoreAside(aside, host) })
	return nil
}

// asideName is a free hidden name next to host.
func asideName(host string) (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(host), ".kiln-aside-"+filepath.Base(host)+"-"+hex.EncodeToString(b[:])), nil
}

// restoreAside puts back what moveAside moved from host, once the emulated
// mount's own undo has cleared host. Something still there is an error,
// never overwritten; an aside the run removed is the run's doing.
func restoreAside(aside, host string) error {
	if _, err := os.Lstat(host); err == nil {
		return fmt.Errorf("cannot put %s back: %s is still in the way", aside, host)
	}
	err := os.Rename(aside, host)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("put %s back: %w", host, err)
	}
	return nil
}

// renameHint explains why a rename in the root failed.
func renameHint(err error) error {
	switch {
	case errors.Is(err, unix.EBUSY):
		return fmt.Errorf("it is a mount point of the pod (%w)", err)
	case errors.Is(err, unix.EXDEV):
		return fmt.Errorf("it comes from the container image's own layers, which this overlay cannot rename (%w)", err)
	}
	return err
}

// removeTree removes host and everything below it; a missing one is fine.
func removeTree(host string) error {
	if err := os.RemoveAll(host); err != nil {
		return fmt.Errorf("clean up %s: %w", host, err)
	}
	return nil
}
