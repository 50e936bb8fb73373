package builder

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/kilnbuild/kiln/cache"
	"github.com/kilnbuild/kiln/internal/units"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// cacheOn reports whether instructions are looked up in a layer cache.
func (b *build) cacheOn() bool { return b.o.cache != nil && !b.o.singleSnapshot }

// changesFiles reports whether an instruction changes the root (and so may be cached).
func changesFiles(cmd instructions.Command) bool {
	switch cmd.(type) {
	case *instructions.RunCommand, *instructions.CopyCommand, *instructions.AddCommand, *instructions.WorkdirCommand:
		return true
	}
	return false
}

// lookupStep returns the cache's answer for step i of s when it is cached (nil otherwise) and
// reports the hit or miss. On a miss, or for an uncached instruction that changes files, the
// root is made to hold the stage's files first.
func (b *build) lookupStep(ctx context.Context, s *stageState, i int, cmd instructions.Command, ev Event) (*cache.Result, error) {
	if !b.cacheOn() || !changesFiles(cmd) {
		return nil, nil
	}
	var sc *stepCache
	if i < len(s.keys) {
		sc = s.keys[i]
	}
	if sc != nil && sc.cacheable {
		r := sc.wait(ctx)
		b.recordOutcome(s, ev, r)
		if r.Hit {
			ev.Kind, ev.Time, ev.CacheSource = EventCacheHit, time.Now(), r.Entry.Source
			ev.Message = fmt.Sprintf("cache hit for key %s (%s)", sc.key.Short(), r.Entry.Source)
			b.o.reporter.Report(ev)
			return &r, nil
		}
		ev.Kind, ev.Time = EventCacheMiss, time.Now()
		ev.Message = fmt.Sprintf("cache miss for key %s: %s", sc.key.Short(), r.Reason)
		b.o.reporter.Report(ev)
		if r.Warning != "" {
			b.warn("[%d/%d] %s: %s", ev.Step, ev.Steps, ev.Instruction, r.Warning)
		}
	}
	if isLink(cmd) {
		return nil, nil // a --link layer is made apart from the root (copylink.go)
	}
	return nil, b.materialise(ctx, s)
}

// applyHit adds a cached layer to the stage instead of running the instruction. The layer is
// unpacked into the root later, and only if a later instruction of the stage needs the files.
func (b *build) applyHit(s *stageState, r *cache.Result) {
	hist := v1.History{CreatedBy: r.Entry.CreatedBy, Created: v1.Time{Time: b.now()}, EmptyLayer: r.Layer == nil}
	if r.Layer != nil {
		s.layers = append(s.layers, mutate.Addendum{Layer: r.Layer, History: hist})
		s.pending = append(s.pending, r.Layer)
	}
	s.history = append(s.history, hist)
}

// materialise makes the root hold the stage's files: the base image, then the cached layers
// applied so far. Until then a stage whose instructions all hit never touches the root.
func (b *build) materialise(ctx context.Context, s *stageState) error {
	if !s.lazy && len(s.pending) == 0 {
		return nil
	}
	changed := false
	if s.lazy {
		if ok, err := b.restoreStage(ctx, s); ok || err != nil { // from the state cache (rootstate.go)
			return err
		}
		unpacked, err := b.prepareRoot(ctx, s.index, s.baseDesc, s.base)
		if err != nil {
			return err
		}
		s.lazy, changed = false, unpacked
	}
	if len(s.pending) > 0 {
		changed = true
		start := time.Now()
		if err := b.extractLayers(ctx, s.pending, b.root); err != nil {
			return fmt.Errorf("unpacking cached layers into the root: %w", err)
		}
		s.pending = nil
		b.o.reporter.Report(Event{Kind: EventExtract, Time: time.Now(), Stage: s.index, Duration: time.Since(start),
			Message: "cached layers unpacked"})
	}
	if !changed {
		return nil // the root still holds the previous stage, as the snapshot recorded it
	}
	if err := b.snap.Reset(ctx); err != nil {
		return fmt.Errorf("recording the root after unpacking cached layers: %w", err)
	}
	return nil
}

// storeStep writes the result of a cached instruction that missed, in the background: the layer
// it just added (added=true), or an empty entry when it changed nothing.
func (b *build) storeStep(s *stageState, i int, added bool, createdBy, what string) {
	cc := b.o.cache
	if !b.cacheOn() || cc.readOnly && cc.local == nil || i >= len(s.keys) || s.keys[i] == nil || !s.keys[i].cacheable {
		return
	}
	store := b.cacheStore()
	if store == nil || cc.readOnly && store == cc.store {
		return
	}
	sc := s.keys[i]
	var layer v1.Layer
	if added {
		layer = s.layers[len(s.layers)-1].Layer
	}
	e := cache.Entry{Key: sc.key, Parent: sc.parent, CreatedBy: createdBy, Created: time.Now().UTC(),
		Empty: !added, Lineage: sc.lineage, Inputs: sc.inputs}
	b.cacheWrites.put(store, layer, e, what)
}

// cacheStore is the store lookups and writes use: the CacheLocal store, when its directory is
// safe to write, chained before the cache repository. It is decided once per build, at the
// first stage, and is nil when neither store is usable.
func (b *build) cacheStore() cache.Store {
	cc := b.o.cache
	cc.once.Do(func() {
		local := cc.local
		if local != nil && !b.localCacheUsable(local.Dir()) {
			local = nil
		}
		switch {
		case local != nil:
			cc.effective = cache.NewChainStore(local, cc.store, cache.RemoteReadOnly(cc.readOnly), cache.ChainTTL(cc.ttl))
			b.cacheWrites.atEnd(func() { b.pruneLocal(local) })
		case cc.store != nil:
			cc.effective = cc.store
		}
		b.cacheWrites.atEnd(b.reportCacheSummary)
	})
	return cc.effective
}

// localCacheUsable reports whether the local layer cache may write dir: a directory the
// snapshot sees would put the cache into the image.
func (b *build) localCacheUsable(dir string) bool {
	abs, err := filepath.Abs(dir)
	switch {
	case err != nil:
		b.warn("local layer cache %s: %v; layers are not kept locally", dir, err)
		return false
	case b.o.podMode && !b.ignore.Ignored(abs):
		b.o.reporter.Report(Event{Kind: EventNote, Time: time.Now(), Message: fmt.Sprintf("local layer cache: %s is "+
			"not a mounted volume (nor below %s), so layers are not kept there (mount a persistent volume at "+
			"the cache directory to keep them)", abs, b.o.kanikoDir)})
		return false
	case !b.o.podMode && within(abs, b.root):
		b.warn("local layer cache: %s lies inside the root %s, so it would end up in the image; layers are not kept locally", abs, b.root)
		return false
	}
	return true
}

// pruneLocal bounds the local layer cache after the build, logging what it removed.
func (b *build) pruneLocal(s *cache.DirStore) {
	opts := b.o.cache.localPrune
	start := time.Now()
	res, err := s.Prune(context.Background(), opts)
	if err != nil {
		b.warn("pruning the local layer cache %s failed (the build goes on): %v", s, err)
		return
	}
	if res.Removed > 0 || res.RemovedBlobs > 0 || res.RemovedForms > 0 || opts.MaxSize > 0 {
		bound := ""
		if opts.MaxSize > 0 {
			bound = " of at most " + units.Bytes(opts.MaxSize)
		}
		b.o.reporter.Report(Event{Kind: EventNote, Time: time.Now(), Duration: time.Since(start), Message: fmt.Sprintf(
			"local layer cache %s: %d entries kept, %d removed with %d blobs, %d base layer unpack forms removed (%s freed); "+
				"the cache directory holds %s%s (base images %s) (%s)", s, res.Entries, res.Removed, res.RemovedBlobs, res.RemovedForms, units.Bytes(res.Freed),
			units.Bytes(res.Size), bound, units.Bytes(res.Other), time.Since(start).Round(time.Millisecond))})
	}
	if res.OverBoundLeft {
		b.warn("the cache directory holds %s, more than its bound %s even with the local layer cache pruned: "+
			"base images take %s and are not pruned by the layer cache", units.Bytes(res.Size),
			units.Bytes(opts.MaxSize), units.Bytes(res.Other))
	}
}

// cacheOutcome is one looked-up step's answer, for the summary.
type cacheOutcome struct {
	stage       int
	step, steps int
	instruction string
	hit         bool
	source      string // on a hit: cache.SourceLocal, SourceRegistry or SourceLayout
	reason      string // on a miss
}

func (b *build) recordOutcome(s *stageState, ev Event, r cache.Result) {
	cc := b.o.cache
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.outcomes = append(cc.outcomes, cacheOutcome{stage: s.index, step: ev.Step, steps: ev.Steps,
		instruction: ev.Instruction, hit: r.Hit, source: r.Entry.Source, reason: r.Reason})
}

// reportCacheSummary reports, at the end of the build, how many steps hit in each store and
// missed, then one line per looked-up step: where it hit, or why it missed.
func (b *build) reportCacheSummary() {
	cc := b.o.cache
	cc.mu.Lock()
	outcomes := cc.outcomes
	cc.mu.Unlock()
	if len(outcomes) == 0 {
		return
	}
	hits := map[string]int{}
	misses := 0
	for _, o := range outcomes {
		if o.hit {
			hits[o.source]++
		} else {
			misses++
		}
	}
	note := func(msg string) { b.o.reporter.Report(Event{Kind: EventNote, Time: time.Now(), Message: msg}) }
	note(fmt.Sprintf("Cache summary: %d steps looked up: %d hit locally, %d in the registry, %d in an oci: layout, %d missed",
		len(outcomes), hits[cache.SourceLocal], hits[cache.SourceRegistry], hits[cache.SourceLayout], misses))
	for _, o := range outcomes {
		what := "hit (" + o.source + ")"
		if !o.hit {
			what = "miss (" + o.reason + ")"
		}
		note(fmt.Sprintf("Cache summary: stage %d [%d/%d] %s: %s", o.stage, o.step, o.steps, shorten(o.instruction, 60), what))
	}
}

// shorten cuts s to n runes, marking the cut.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "..."
}
