package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// Accept records the current state of exactly the given image paths (not their subtrees) as
// the baseline, without writing a layer: the caller already has the layer of that change, as
// when a layer made elsewhere (COPY --link) was just unpacked into the root. A path that no
// longer exists, or is no longer a directory, loses its baseline entries below it, since the
// layer that replaced it already hides them.
func (s *Snapshotter) Accept(ctx context.Context, paths []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, ok := cleanImagePath(p)
		if !ok {
			return fmt.Errorf("snapshot path %q escapes the root", p)
		}
		if c == "/" || s.opts.ignoredTree(c) {
			continue
		}
		if err := s.accept(c); err != nil {
			return err
		}
	}
	return nil
}

func (s *Snapshotter) accept(p string) error {
	r, err := lstatRecord(hostPath(s.root, p))
	switch {
	case errors.Is(err, os.ErrNotExist):
		s.forgetBelow(p)
		delete(s.baseline, p)
		return nil
	case err != nil:
		return err
	}
	if old, had := s.baseline[p]; had && old.isDir() && !r.isDir() {
		s.forgetBelow(p)
	}
	s.baseline[p] = r
	return nil
}

// forgetBelow drops the baseline entries strictly below p.
func (s *Snapshotter) forgetBelow(p string) {
	for q := range s.baseline {
		if q != p && isUnder(q, p) {
			delete(s.baseline, q)
		}
	}
}
