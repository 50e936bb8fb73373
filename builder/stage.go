package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/kilnbuild/kiln/buildcontext"
	"github.com/kilnbuild/kiln/cache"
	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/internal/units"
	"github.com/kilnbuild/kiln/snapshot"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// stageState is what the instructions of one stage read and change.
type stageState struct {
	index   int
	name    string
	base    v1.Image
	cfg     *v1.ConfigFile // the config being built (a copy of the base's)
	scope   *dockerfile.Scope
	cmdSet  bool // CMD was set in this stage (ENTRYPOINT then keeps it)
	layers  []mutate.Addendum
	history []v1.History // this stage's history entries, layer-bearing and empty, in order
	created time.Time

	// The image paths this stage declared with VOLUME, and those whose directories are still
	// to be created (see volume.go).
	volumes, pendingVolumes []string

	// The layer cache (see cachesteps.go).
	keys     []*stepCache // per instruction; nil without a cache
	baseDesc dockerfile.Base
	lazy     bool       // the root is not prepared yet: every instruction so far hit
	pending  []v1.Layer // cached layers not unpacked into the root yet
}

// runStage builds stage idx in b's root; last says it is the target. It leaves b.rootHolds
// saying what the root holds afterwards; the scheduler decides what happens to it next.
func (b *build) runStage(ctx context.Context, idx int, last bool) (v1.Image, error) {
	start := time.Now()
	st := b.df.Stages[idx]
	if nc, ok := b.namedContext(st.Name); ok && st.Name != "" {
		return b.contextStage(ctx, idx, nc)
	}
	s, baseCfg, cmds, err := b.startStage(ctx, idx)
	if err != nil {
		return nil, err
	}
	for i, cmd := range cmds {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := b.step(ctx, s, cmd, i+1, len(cmds)); err != nil {
			return nil, err
		}
	}
	img, err := b.finishStage(ctx, s, baseCfg, last)
	if err != nil {
		return nil, err
	}
	b.o.reporter.Report(Event{Kind: EventStageDone, Time: time.Now(), Stage: idx, StageName: st.Name, Duration: time.Since(start)})
	return img, nil
}

// startStage resolves stage idx's base, prepares the root unless the layer cache may spare
// it, and returns the stage's state, its base's config and its instructions (ONBUILD
// triggers of the base first), whose cache lookups have started.
func (b *build) startStage(ctx context.Context, idx int) (*stageState, *v1.ConfigFile, []instructions.Command, error) {
	st := b.df.Stages[idx]
	base, err := b.df.BaseOf(idx, b.meta)
	if err != nil {
		return nil, nil, nil, err
	}
	b.o.reporter.Report(Event{Kind: EventStageStart, Time: time.Now(), Stage: idx, StageName: st.Name,
		Line: st.Line, Instruction: "FROM " + describeBase(base), Steps: len(st.Commands)})
	atFrom := func(err error) error { return fmt.Errorf("%s:%d: FROM %s: %w", b.df.Name, st.Line, st.BaseName, err) }

	baseImg, named, err := b.stageBase(ctx, base)
	if err != nil {
		return nil, nil, nil, atFrom(err)
	}
	if b.o.baseCache != nil && base.Stage < 0 && !base.Scratch && !named {
		baseImg = b.o.baseCache.Image(baseImg)
	}
	lazy := b.cacheOn() // with a cache, the root is prepared when the first instruction misses
	if !lazy {
		if err := b.prepareStageRoot(ctx, idx, base, baseImg); err != nil {
			return nil, nil, nil, atFrom(err)
		}
	}
	baseCfg, err := baseImg.ConfigFile()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading config of %s: %w", st.BaseName, err)
	}
	cfg := baseCfg.DeepCopy()
	withDefaultPath(cfg)
	s := &stageState{index: idx, name: st.Name, base: baseImg, cfg: cfg,
		scope: b.stageScope(base, cfg.Config.Env), created: b.now(), baseDesc: base, lazy: lazy}
	cmds, err := b.onBuildTriggers(cfg)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s:%d: ONBUILD triggers of %s: %w", b.df.Name, st.Line, st.BaseName, err)
	}
	cfg.Config.OnBuild = nil // triggers run once, in the first child only
	cmds = append(cmds, st.Commands...)
	if b.cacheOn() {
		s.keys = b.planCache(ctx, s, st.BaseName, cmds)
	}
	return s, baseCfg, cmds, nil
}

// prepareStageRoot unpacks the stage's base into the root and records the root's state.
func (b *build) prepareStageRoot(ctx context.Context, idx int, base dockerfile.Base, img v1.Image) error {
	unpacked, err := b.prepareRoot(ctx, idx, base, img)
	if err != nil || !unpacked {
		return err
	}
	if err := b.snap.Reset(ctx); err != nil {
		return fmt.Errorf("recording the root after unpacking the base: %w", err)
	}
	return nil
}

// finishStage takes the single snapshot if asked, adds the labels to the target, assembles
// the stage's image and notes what the root holds afterwards.
func (b *build) finishStage(ctx context.Context, s *stageState, baseCfg *v1.ConfigFile, last bool) (v1.Image, error) {
	b.keepStageLayers(ctx, s) // for later builds' roots (rootstate.go)
	if b.o.singleSnapshot {
		if err := b.snapshotStage(ctx, s); err != nil {
			return nil, err
		}
	}
	if last && len(b.o.labels) > 0 {
		if s.cfg.Config.Labels == nil {
			s.cfg.Config.Labels = map[string]string{}
		}
		for k, v := range b.o.labels {
			s.cfg.Config.Labels[k] = v
		}
	}
	for k := range s.scope.Args() {
		b.usedArgs[k] = true
	}
	b.scopes[s.index] = s.scope
	img, err := b.assemble(s, baseCfg)
	if err != nil {
		return nil, err
	}
	switch {
	case s.lazy:
		// Every instruction hit: the root was not touched and still holds what it held.
	case len(s.pending) > 0:
		b.rootHolds = -1 // cached layers after the last miss are not in the root
	case len(s.volumes) > 0:
		b.rootHolds = -1 // what RUN wrote below a VOLUME path is in the root, not in the image
	default:
		b.rootHolds = s.index
	}
	return img, nil
}

func describeBase(base dockerfile.Base) string {
	switch {
	case base.Stage >= 0:
		return "stage " + strconv.Itoa(base.Stage)
	case base.Scratch:
		return "scratch"
	}
	return base.Image
}

// stageBase returns the image a stage starts from, and whether a named context gave it.
func (b *build) stageBase(ctx context.Context, base dockerfile.Base) (v1.Image, bool, error) {
	if base.Stage < 0 && !base.Scratch {
		if nc, ok := b.namedContext(base.Image); ok {
			img, err := b.namedImage(ctx, nc)
			return img, true, err
		}
	}
	img, err := b.baseImage(ctx, base)
	return img, false, err
}

// contextStage is a stage replaced by the named context of its name: its instructions do not
// run, and it is the context's image.
func (b *build) contextStage(ctx context.Context, idx int, nc *namedContext) (v1.Image, error) {
	start := time.Now()
	st := b.df.Stages[idx]
	b.o.reporter.Report(Event{Kind: EventStageStart, Time: start, Stage: idx, StageName: st.Name, Line: st.Line,
		Instruction: fmt.Sprintf("build context %s=%s (replaces the stage)", nc.Name, buildcontext.Redact(nc.Value))})
	img, err := b.namedImage(ctx, nc)
	if err != nil {
		return nil, fmt.Errorf("%s:%d: stage %s: %w", b.df.Name, st.Line, st.Name, err)
	}
	b.o.reporter.Report(Event{Kind: EventStageDone, Time: time.Now(), Stage: idx, StageName: st.Name, Duration: time.Since(start)})
	return img, nil
}

// baseImage returns the image a stage starts from.
func (b *build) baseImage(ctx context.Context, base dockerfile.Base) (v1.Image, error) {
	if base.Stage >= 0 {
		r, ok := b.results[base.Stage]
		if !ok {
			return nil, fmt.Errorf("stage %d was not built", base.Stage)
		}
		return r.image, nil
	}
	platform := b.platform
	if base.Platform != "" {
		p, err := dockerfile.ParsePlatform(base.Platform)
		if err != nil {
			return nil, err
		}
		platform = p
	}
	if base.Scratch {
		cfg := &v1.ConfigFile{OS: platform.OS, Architecture: platform.Architecture, Variant: platform.Variant,
			RootFS: v1.RootFS{Type: "layers"}}
		img, err := mutate.ConfigFile(empty.Image, cfg)
		if err != nil {
			return nil, err
		}
		return mutate.MediaType(img, types.DockerManifestSchema2), nil
	}
	start := time.Now()
	img, err := b.pullBase(ctx, base.Image, v1.Platform{OS: platform.OS, Architecture: platform.Architecture, Variant: platform.Variant})
	if err != nil {
		return nil, err
	}
	d, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", base.Image, err)
	}
	b.o.reporter.Report(Event{Kind: EventPull, Time: time.Now(), Message: base.Image + "@" + d.String(), Duration: time.Since(start)})
	return img, nil
}

// prepareRoot makes the root hold exactly the base image's filesystem (plus ignored paths). It
// reports whether it unpacked anything: when the previous stage is this one's base and still
// in place, the root and the snapshot's record of it are already right.
func (b *build) prepareRoot(ctx context.Context, idx int, base dockerfile.Base, img v1.Image) (bool, error) {
	if base.Stage >= 0 && b.rootHolds == base.Stage {
		return false, nil
	}
	if err := b.releaseRoot(); err != nil { // an overlay of the state cache (rootstate.go)
		return false, err
	}
	b.rootHolds = -1
	start := time.Now()
	err := withRetries(ctx, b.o.extractRetries, func() error {
		if err := snapshot.Clear(b.root, b.ignore.Ignored); err != nil {
			return fmt.Errorf("clearing the root before stage %d: %w", idx, err)
		}
		return b.extractImage(ctx, img, b.root)
	}, func(attempt int, err error) {
		b.warn("unpacking the base image of stage %d failed (%v); retrying (%d/%d)", idx, err, attempt, b.o.extractRetries)
	})
	if err != nil {
		return false, err
	}
	b.o.reporter.Report(Event{Kind: EventExtract, Time: time.Now(), Stage: idx, Duration: time.Since(start)})
	return true, nil
}

// extractImage unpacks every layer of img into dir, in order, from the unpack forms the base
// image cache keeps where it has them. Should one turn out damaged, it is removed and the image
// unpacked again from its blobs, since dir then holds part of a wrong layer.
func (b *build) extractImage(ctx context.Context, img v1.Image, dir string) error {
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("reading layers: %w", err)
	}
	err = b.unpackLayers(ctx, layers, dir, true)
	var fe *formError
	if !errors.As(err, &fe) || ctx.Err() != nil {
		return err
	}
	fe.layer.RemoveForm(fe.err) // warns, through the cache's warnings
	if err := snapshot.Clear(dir, b.ignoreIn(dir)); err != nil {
		return fmt.Errorf("clearing %s: %w", dir, err)
	}
	return b.unpackLayers(ctx, layers, dir, false)
}

// formError is a failure while unpacking a layer from its unpack form.
type formError struct {
	layer formLayer
	err   error
}

func (e *formError) Error() string { return e.err.Error() }
func (e *formError) Unwrap() error { return e.err }

// extractLayers unpacks layers into dir, in order, downloading ahead of the extraction.
func (b *build) extractLayers(ctx context.Context, layers []v1.Layer, dir string) error {
	return b.unpackLayers(ctx, layers, dir, false)
}

// ignoreIn is what an extraction into dir leaves alone: the ignored paths in the root.
func (b *build) ignoreIn(dir string) snapshot.IgnoreFunc {
	if dir == b.root {
		return b.ignore.Ignored
	}
	return nil
}

// unpackLayers is extractLayers, reading unpack forms when forms is set (see extractImage).
func (b *build) unpackLayers(ctx context.Context, layers []v1.Layer, dir string, forms bool) error {
	ignore := b.ignoreIn(dir)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fetched := prefetch(ctx, layers, fetchDir(b.workDir), forms)
	defer cleanupFetched(fetched)
	for i, f := range fetched {
		start := time.Now()
		if err := b.extractFetched(ctx, f, dir, ignore); err != nil {
			d, _ := f.layer.Digest()
			err = fmt.Errorf("unpacking layer %d/%d (%s): %w", i+1, len(layers), d, err)
			if f.form != nil {
				err = &formError{layer: f.layer.(formLayer), err: err}
			}
			return err
		}
		if f.pulled {
			b.o.reporter.Report(Event{Kind: EventProgress, Time: time.Now(), Done: int64(i + 1), Total: int64(len(layers)),
				Message: fmt.Sprintf("layer %d/%d %s: pulled %s in %s, unpacked in %s", i+1, len(layers),
					shortDigest(f.layer), units.Bytes(f.size), f.took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))})
		}
		if f.path != "" {
			os.Remove(f.path)
		}
	}
	return nil
}

// extractFetched unpacks one layer: from its unpack form when it has one, else from its blob,
// making its form on the way when the base image cache can keep one.
func (b *build) extractFetched(ctx context.Context, f *fetchedLayer, dir string, ignore snapshot.IgnoreFunc) error {
	if f.form != nil {
		return extractStream(ctx, f.form, dir, ignore, f.diffID(), nil)
	}
	rc, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	var keep *cache.FormWriter
	if fl, ok := f.layer.(formLayer); ok {
		keep = fl.NewForm()
	}
	return extractStream(ctx, rc, dir, ignore, f.diffID(), keep)
}

// stageDependencies are the earlier stages a stage reads from.
type stageDependencies struct {
	base int          // stage its FROM names, or -1
	from map[int]bool // stages its COPY --from and RUN --mount from= name
}

func (b *build) stageDeps(j int) stageDependencies {
	deps := stageDependencies{base: -1, from: map[int]bool{}}
	if b.replacesStage(b.df.Stages[j].Name) {
		return deps // its instructions do not run
	}
	if base, err := b.df.BaseOf(j, b.meta); err == nil {
		deps.base = base.Stage
	}
	for _, c := range b.df.Stages[j].Commands {
		for _, from := range dockerfile.ReadsFrom(c) {
			if i, ok := b.stageIndex(from, j); ok {
				deps.from[i] = true
			}
		}
	}
	return deps
}

// stageIndex resolves a COPY --from value to an earlier stage of stage j, by name or index.
func (b *build) stageIndex(ref string, j int) (int, bool) {
	i, isStage, err := b.df.FromStage(ref, j)
	if err != nil || !isStage {
		return -1, false
	}
	return i, true
}

func (b *build) now() time.Time {
	if b.o.reproducible {
		return time.Unix(0, 0).UTC()
	}
	return time.Now().UTC()
}
