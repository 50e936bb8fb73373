package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// Snapshotter records the state of a root filesystem and turns what changed since into layers.
// Its methods are safe to call from several goroutines, though calls are serialized.
type Snapshotter struct {
	root string
	opts options

	mu       sync.Mutex
	baseline state
}

// New returns a Snapshotter for root. Until Reset is called the baseline is empty, so the first
// Take captures the whole root.
func New(root string, opts ...Option) *Snapshotter {
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	return &Snapshotter{root: filepath.Clean(root), opts: buildOptions(opts), baseline: state{}}
}

// Reset records the current state of the root as the baseline (after a base image was
// extracted or the root was cleared).
func (s *Snapshotter) Reset(ctx context.Context) error {
	cur := state{}
	if err := walkState(ctx, s.root, "/", &s.opts, cur); err != nil {
		return fmt.Errorf("recording state of %s: %w", s.root, err)
	}
	s.mu.Lock()
	s.baseline = cur
	s.mu.Unlock()
	return nil
}

// Take walks the root, compares with the baseline, writes a layer of what changed
// (added/modified entries with their parent directories, whiteouts for deletions, an opaque
// whiteout for a directory that was replaced), and makes the new state the baseline.
// It returns (nil, nil) when nothing changed.
func (s *Snapshotter) Take(ctx context.Context) (*Layer, error) {
	return s.TakeExcluding(ctx, nil)
}

// TakeExcluding is Take, except that what was added or changed strictly below one of the
// image directories dirs stays out of the layer, and out of the baseline (a new file there
// counts as new again next time; a changed one keeps its old record). The directories
// themselves, and deletions below them, are recorded as usual. This is how Kaniko treats the
// paths a stage declared with VOLUME when it snapshots a RUN, so its users get the same image.
func (s *Snapshotter) TakeExcluding(ctx context.Context, dirs []string) (*Layer, error) {
	excluded, err := strictlyBelow(dirs)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Sized like the last walk: growing a map of every path in the root step by step leaves
	// its old tables behind as garbage, which is most of a walk's peak memory.
	cur := make(state, len(s.baseline)+len(s.baseline)/8)
	if err := walkState(ctx, s.root, "/", &s.opts, cur); err != nil {
		return nil, fmt.Errorf("walking %s: %w", s.root, err)
	}
	d := &differ{old: s.baseline, cur: cur, excluded: excluded}
	changes, _, err := d.changes()
	if err != nil {
		return nil, err
	}
	l, err := s.write(ctx, changes)
	if err != nil {
		return nil, err
	}
	if excluded != nil {
		keepOut(cur, s.baseline, excluded)
	}
	s.baseline = cur
	return l, nil
}

// strictlyBelow returns a test for "lies strictly below one of dirs" (nil when dirs is empty).
func strictlyBelow(dirs []string) (func(string) bool, error) {
	var clean []string
	for _, d := range dirs {
		c, ok := cleanImagePath(d)
		if !ok {
			return nil, fmt.Errorf("excluded path %q escapes the root", d)
		}
		clean = append(clean, c)
	}
	if len(clean) == 0 {
		return nil, nil
	}
	return func(p string) bool {
		for _, c := range clean {
			if p != c && isUnder(p, c) {
				return true
			}
		}
		return false
	}, nil
}

// keepOut makes cur, the next baseline, record excluded paths as old recorded them: absent
// when they are new, with their old record when they changed.
func keepOut(cur, old state, excluded func(string) bool) {
	for p := range cur {
		if !excluded(p) {
			continue
		}
		if o, ok := old[p]; ok {
			cur[p] = o
		} else {
			delete(cur, p)
		}
	}
}

// TakePaths is Take restricted to the given image paths and everything below them (used for
// COPY/ADD, whose written paths are known): no walk of the rest of the root. The parent
// directories of those paths are included in the layer with their current metadata. A path
// that no longer exists becomes a whiteout if the baseline had it.
func (s *Snapshotter) TakePaths(ctx context.Context, paths []string) (*Layer, error) {
	scopes, err := s.scopes(paths)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := state{}
	for _, p := range scopes {
		if err := walkState(ctx, s.root, p, &s.opts, cur); err != nil {
			return nil, fmt.Errorf("walking %s: %w", hostPath(s.root, p), err)
		}
	}
	inScope := func(p string) bool {
		for _, sc := range scopes {
			if isUnder(p, sc) {
				return true
			}
		}
		return false
	}
	d := &differ{old: s.baseline, cur: cur, inScope: inScope, lookup: s.lookup}
	changes, added, err := d.changes()
	if err != nil {
		return nil, err
	}
	l, err := s.write(ctx, changes)
	if err != nil {
		return nil, err
	}
	// Only the walked subtrees (and the parents shipped with them) move the baseline.
	for p := range s.baseline {
		if inScope(p) {
			if _, ok := cur[p]; !ok {
				delete(s.baseline, p)
			}
		}
	}
	for p, r := range cur {
		s.baseline[p] = r
	}
	for p, r := range added {
		s.baseline[p] = r
	}
	return l, nil
}

// scopes cleans paths, drops ignored ones and those below another listed path.
func (s *Snapshotter) scopes(paths []string) ([]string, error) {
	var clean []string
	for _, p := range paths {
		c, ok := cleanImagePath(p)
		if !ok {
			return nil, fmt.Errorf("snapshot path %q escapes the root", p)
		}
		if s.opts.ignoredTree(c) {
			continue
		}
		clean = append(clean, c)
	}
	sort.Strings(clean)
	var out []string
	for _, c := range clean {
		if len(out) > 0 && isUnder(c, out[len(out)-1]) {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// lookup stats one image path that lies outside the walked scopes.
func (s *Snapshotter) lookup(p string) (record, bool, error) {
	if s.opts.ignoredTree(p) {
		return record{}, false, nil
	}
	r, err := lstatRecord(hostPath(s.root, p))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return record{}, false, nil
		}
		return record{}, false, err
	}
	return r, true, nil
}

// write turns changes into a layer file, or returns nil when there are none.
func (s *Snapshotter) write(ctx context.Context, changes []change) (*Layer, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	return writeLayer(s.opts.layerDir, s.opts.compression, func(out io.Writer) error {
		tw := newTarWriter(out, s.root, s.opts.reproducible)
		ahead := startPrefetch(ctx, s.root, changes)
		defer ahead.stop()
		var bytes int64
		for i, c := range changes {
			f, err := ahead.get(ctx, i)
			if err != nil {
				return err
			}
			if err := tw.write(c, f); err != nil {
				return err
			}
			if c.kind == changeAdd && c.rec.isReg() {
				bytes += c.rec.size
			}
			if s.opts.progress != nil && s.opts.every > 0 && (i+1)%s.opts.every == 0 {
				s.opts.progress(i+1, bytes)
			}
		}
		return tw.close()
	})
}
