package builder

import (
	"context"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/kilnbuild/kiln/cache"
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
		if r.Hit {
			ev.Kind, ev.Time = EventCacheHit, time.Now()
			ev.Message = fmt.Sprintf("cache hit for key %s", sc.key.Short())
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
	if !b.cacheOn() || b.o.cache.readOnly || i >= len(s.keys) || s.keys[i] == nil || !s.keys[i].cacheable {
		return
	}
	sc := s.keys[i]
	var layer v1.Layer
	if added {
		layer = s.layers[len(s.layers)-1].Layer
	}
	e := cache.Entry{Key: sc.key, Parent: sc.parent, CreatedBy: createdBy, Created: time.Now().UTC(),
		Empty: !added, Lineage: sc.lineage, Inputs: sc.inputs}
	b.cacheWrites.put(b.o.cache.store, layer, e, what)
}
