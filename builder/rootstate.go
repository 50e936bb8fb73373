package builder

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/internal/decompress"
	"github.com/kilnbuild/kiln/internal/rootstate"
	"github.com/kilnbuild/kiln/internal/units"
	"github.com/kilnbuild/kiln/snapshot"
)

// defaultStateCacheMaxSize bounds a state cache unless StateCacheMaxSize says otherwise.
const defaultStateCacheMaxSize = 10 << 30

// stateCacheJobs is how many layers are unpacked into the state cache at once.
const stateCacheJobs = 2

// StateCacheOption configures WithStateCache.
type StateCacheOption func(*stateCache)

// WithStateCache keeps, in dir, every layer a directory-mode build unpacks or makes, unpacked,
// so that a later build (any build using dir) makes its root from them instead of unpacking
// layer archives: a rebuild after an app-only change unpacks nothing. It works with the layer
// cache (WithCache): where a stage's first instruction to miss comes, the root is made of the
// base image and the cached layers before it, as today, but from dir. With overlays (the
// default, StateCacheOverlay) the root is then an overlay mount of the kept layers, read-only,
// under a fresh upper directory: it takes no time, and it is unmounted when Build returns, so
// the root is empty afterwards (the image holds the files). Where the process may not mount
// (no CAP_SYS_ADMIN), or with StateCacheOverlay(false), the layers are copied into the root
// instead (cloned where the file system can; never hardlinked), which stays filled as usual.
// The image is the same either way: its layers come from the layer cache and the snapshots.
//
// dir is shared safely by builds and processes: layers are written under temporary names and
// renamed into place with a marker written last (a layer without it is never used), and at the
// end of a build the least recently used layers go until dir holds at most StateCacheMaxSize,
// when no other build has it open. Pod mode, side roots of parallel stages, builds without
// the layer cache and directory builds with WithIgnorePaths do not use it. A layer that names
// a parent directory it lacks, or hardlinks into another layer, is unpacked as before.
func WithStateCache(dir string, opts ...StateCacheOption) Option {
	return func(o *options) {
		c := &stateCache{dir: dir, overlay: true, maxSize: defaultStateCacheMaxSize}
		for _, opt := range opts {
			opt(c)
		}
		o.stateCache = c
		if dir == "" {
			o.stateCache = nil
		}
	}
}

// StateCacheOverlay sets whether roots are overlay mounts of the kept layers (default true)
// or copies of them.
func StateCacheOverlay(on bool) StateCacheOption { return func(c *stateCache) { c.overlay = on } }

// StateCacheMaxSize bounds the state cache's size in bytes (default 10 GiB; 0: no bound).
func StateCacheMaxSize(n int64) StateCacheOption { return func(c *stateCache) { c.maxSize = n } }

// stateCache is one build's use of a state cache; WithStateCache makes one per build.
type stateCache struct {
	dir     string
	overlay bool
	maxSize int64

	mu       sync.Mutex
	opened   bool
	store    *rootstate.Store // nil when it could not be opened
	mount    *rootstate.Mount // the overlay at the root, if any
	adding   map[v1.Hash]bool // layers being added in the background
	saves    sync.WaitGroup
	sem      chan struct{}
	overlayN int // overlay mounts made (for the end note)
}

// stateOn reports whether this stage's root may come from the state cache.
func (b *build) stateOn() bool {
	if b.o.stateCache == nil || b.o.podMode || !b.cacheOn() || len(b.o.ignorePaths) > 0 || runtime.GOOS != "linux" {
		return false
	}
	main, err := filepath.Abs(b.o.root)
	return err == nil && main == b.root // not a side root of a parallel stage
}

// stateStore opens the state cache at its first use in the build (nil if it cannot be used).
func (b *build) stateStore() *rootstate.Store {
	c := b.o.stateCache
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.opened {
		return c.store
	}
	c.opened = true
	abs, err := filepath.Abs(c.dir)
	if err == nil && within(abs, b.root) {
		err = fmt.Errorf("it lies inside the root %s, so it would end up in the image", b.root)
	}
	if err == nil {
		err = rootstate.UnmountStale(b.root)
	}
	if err == nil {
		c.store, err = rootstate.Open(abs)
	}
	if err != nil {
		b.warn("state cache %s: %v; layers are unpacked as usual", c.dir, err)
		return nil
	}
	c.adding, c.sem = map[v1.Hash]bool{}, make(chan struct{}, stateCacheJobs)
	b.cacheWrites.atEnd(b.finishStateCache)
	return c.store
}

// restoreStage makes the root hold the stage's files (its base image, then the cached layers
// applied so far) from the state cache, adding to it the layers it lacks. It reports false
// when it did not, and the root is then prepared by unpacking, as without it.
func (b *build) restoreStage(ctx context.Context, s *stageState) (bool, error) {
	if !b.stateOn() || s.baseDesc.Stage >= 0 && b.rootHolds == s.baseDesc.Stage {
		return false, nil // the root already holds the stage this one starts from
	}
	layers, err := s.base.Layers()
	if err != nil {
		return false, nil // unpacking reports it
	}
	layers = append(layers[:len(layers):len(layers)], s.pending...)
	if len(layers) == 0 {
		return false, nil // nothing to unpack anyway
	}
	st := b.stateStore()
	if st == nil {
		return false, nil
	}
	start := time.Now()
	chain, added, err := b.keepLayers(ctx, st, layers)
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		b.note(0, "state cache %s: %v; unpacking instead", st, err)
		return false, nil
	}
	how, err := b.rootFromState(st, chain)
	if err != nil {
		b.warn("state cache %s: %v; unpacking instead", st, err)
		return false, nil
	}
	st.Touch(chain...)
	kept := "all kept by earlier builds"
	if added > 0 {
		kept = fmt.Sprintf("%d unpacked into the cache now", added)
	}
	b.o.reporter.Report(Event{Kind: EventExtract, Time: time.Now(), Stage: s.index, Duration: time.Since(start),
		Message: fmt.Sprintf("root restored from the state cache by %s: %d layers, %s", how, len(chain), kept)})
	s.lazy, s.pending = false, nil
	if err := b.snap.Reset(ctx); err != nil {
		return true, fmt.Errorf("recording the root after restoring it: %w", err)
	}
	return true, nil
}

// keepLayers adds to the store the layers it lacks, two at a time, and returns their diffIDs
// in order with how many it added.
func (b *build) keepLayers(ctx context.Context, st *rootstate.Store, layers []v1.Layer) ([]v1.Hash, int, error) {
	chain := make([]v1.Hash, len(layers))
	var missing []int
	for i, l := range layers {
		d, err := l.DiffID()
		if err != nil {
			return nil, 0, fmt.Errorf("diffID of layer %d: %w", i+1, err)
		}
		chain[i] = d
		if err := st.Rejected(d); err != nil {
			return nil, 0, fmt.Errorf("layer %d %s: %w", i+1, shortDigest(l), err)
		}
		if !st.Has(d) {
			missing = append(missing, i)
		}
	}
	errs := make([]error, len(missing))
	var wg sync.WaitGroup
	sem := make(chan struct{}, stateCacheJobs)
	for j, i := range missing {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[j] = b.addLayer(ctx, st, layers[i], chain[i], fmt.Sprintf("%d/%d", i+1, len(layers)), "unpacked into the cache")
		}()
	}
	wg.Wait()
	return chain, len(missing), errors.Join(errs...)
}

// addLayer unpacks one layer into the store, reporting it.
func (b *build) addLayer(ctx context.Context, st *rootstate.Store, l v1.Layer, diffID v1.Hash, which, what string) error {
	start := time.Now()
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("layer %s %s: %w", which, shortDigest(l), err)
	}
	defer rc.Close()
	r, release, err := decompress.Reader(rc) // gzip inflated ahead on another core
	if err != nil {
		return fmt.Errorf("layer %s %s: %w", which, shortDigest(l), err)
	}
	defer release()
	if err := st.Add(diffID, ctxReader{ctx, r}); err != nil {
		return fmt.Errorf("layer %s %s: %w", which, shortDigest(l), err)
	}
	size, _ := l.Size()
	b.o.reporter.Report(Event{Kind: EventProgress, Time: time.Now(), Message: fmt.Sprintf(
		"state cache: layer %s %s (%s) %s in %s", which, shortDigest(l), units.Bytes(size), what,
		time.Since(start).Round(time.Millisecond))})
	return nil
}

// rootFromState empties the root and makes it the chain: an overlay mount where possible, else
// a copy. It says which.
func (b *build) rootFromState(st *rootstate.Store, chain []v1.Hash) (string, error) {
	if err := b.releaseRoot(); err != nil {
		return "", err
	}
	b.rootHolds = -1
	if err := snapshot.Clear(b.root, b.ignore.Ignored); err != nil {
		return "", fmt.Errorf("clearing the root %s: %w", b.root, err)
	}
	c := b.o.stateCache
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.overlay {
		m, err := st.Mount(b.root, chain)
		if err == nil {
			c.mount = m
			c.overlayN++
			return "overlay", nil
		}
		c.overlay = false // the next stages copy too
		b.note(0, "state cache: %v; copying the kept layers into the root instead", err)
	}
	if err := st.Merge(b.root, chain); err != nil {
		if cerr := snapshot.Clear(b.root, b.ignore.Ignored); cerr != nil {
			return "", errors.Join(err, cerr)
		}
		return "", err
	}
	return "copy", nil
}

// releaseRoot unmounts the overlay the state cache put at this root, if any (the root is
// empty then). A side root of a parallel stage never has one.
func (b *build) releaseRoot() error {
	c := b.o.stateCache
	if c == nil {
		return nil
	}
	c.mu.Lock()
	m := c.mount
	if m == nil || m.Target() != b.root {
		c.mu.Unlock()
		return nil
	}
	c.mount = nil
	c.mu.Unlock()
	b.rootHolds = -1
	return m.Unmount()
}

// keepStageLayers adds the stage's layers (those its instructions made, and cached ones) to
// the state cache in the background, for later builds; Build waits for them at its end.
func (b *build) keepStageLayers(ctx context.Context, s *stageState) {
	if !b.stateOn() || s.lazy {
		return // every step hit: the next build hits too, and the layers wait till one misses
	}
	st := b.stateStore()
	if st == nil {
		return
	}
	c := b.o.stateCache
	for i, a := range s.layers {
		d, err := a.Layer.DiffID()
		c.mu.Lock()
		skip := err != nil || c.adding[d] || st.Has(d) || st.Rejected(d) != nil
		if !skip {
			c.adding[d] = true
		}
		c.mu.Unlock()
		if skip {
			continue
		}
		c.saves.Add(1)
		go func(l v1.Layer, which string) {
			defer c.saves.Done()
			c.sem <- struct{}{}
			defer func() { <-c.sem }()
			if err := b.addLayer(ctx, st, l, d, which, "kept for later builds"); err != nil && ctx.Err() == nil {
				b.note(0, "state cache %s: %v; later builds unpack it", st, err)
			}
		}(a.Layer, fmt.Sprintf("%d/%d of stage %d", i+1, len(s.layers), s.index))
	}
}

// finishStateCache runs at the end of the build: it waits for the layers being added,
// unmounts the root, lets the store go, and prunes it.
func (b *build) finishStateCache() {
	c := b.o.stateCache
	c.saves.Wait()
	if err := b.releaseRoot(); err != nil {
		b.warn("state cache: %v", err)
	}
	c.mu.Lock()
	st := c.store
	c.store = nil
	c.mu.Unlock()
	if st == nil {
		return
	}
	st.Close()
	start := time.Now()
	res, err := rootstate.Prune(c.dir, c.maxSize)
	switch {
	case err != nil:
		b.warn("pruning the state cache %s failed (the build goes on): %v", c.dir, err)
	case res.Busy:
		b.note(0, "state cache %s: another build uses it; not pruned now", c.dir)
	default:
		b.note(0, "state cache %s: %d layers kept (%s), %d removed (%s freed) (%s)", c.dir, res.Kept,
			units.Bytes(res.Size), res.Removed, units.Bytes(res.Freed), time.Since(start).Round(time.Millisecond))
	}
}

// ctxReader stops a long copy when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   interface{ Read([]byte) (int, error) }
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
