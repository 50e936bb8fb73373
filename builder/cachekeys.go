package builder

import (
	"context"
	"fmt"
	"path"
	"time"

	"github.com/kilnbuild/kiln/cache"
	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/registry"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// stepCache is the cache's view of one instruction of a stage.
type stepCache struct {
	key, parent cache.Key
	inputs      []cache.Input
	lineage     string
	cacheable   bool              // looked up before, and stored after, running it
	result      chan cache.Result // the lookup's answer (buffered; read once)
}

// wait returns the lookup's result.
func (sc *stepCache) wait(ctx context.Context) cache.Result {
	select {
	case r := <-sc.result:
		return r
	case <-ctx.Done():
		return cache.Result{Reason: ctx.Err().Error()}
	}
}

// planCache computes the key of every instruction of the stage up front and starts looking up
// the cacheable ones, all at once. The chain only needs the scope, which ARG, ENV, WORKDIR, USER
// and SHELL change the same way the instructions will; COPY/ADD need their source digests.
// When a key cannot be known (an ADD of a URL without --checksum, an expansion error), that
// instruction and every later one of the stage are not cached.
func (b *build) planCache(ctx context.Context, s *stageState, stageBase string, cmds []instructions.Command) []*stepCache {
	store := b.cacheStore()
	if store == nil {
		return nil
	}
	kc, err := b.newKeyChain(s)
	if err != nil {
		b.warn("stage %d: no cache: digest of its base image: %v", s.index, err)
		return nil
	}
	out := make([]*stepCache, len(cmds))
	broken := false
	now := time.Now()
	for i, raw := range cmds {
		sc := &stepCache{parent: kc.parent, lineage: cache.LineageOf(b.df.Name, s.index, stageBase, i),
			result: make(chan cache.Result, 1)}
		out[i] = sc
		if broken {
			continue
		}
		if broken = !b.keyStep(ctx, s.index, kc, raw, sc); broken {
			continue
		}
		if sc.cacheable {
			go func() {
				sc.result <- cache.Lookup(ctx, store, sc.key, sc.parent, sc.inputs, sc.lineage, b.o.cache.ttl, now)
			}()
		}
	}
	return out
}

// keyChain follows a stage's config through its instructions as the build will, so that each
// instruction's key is known before the stage runs.
type keyChain struct {
	scope         *dockerfile.Scope
	workdir, user string
	shell         []string
	build         cache.Input // the build's own settings that change layers
	parent        cache.Key   // the key of the previous instruction (or of the base)
}

func (b *build) newKeyChain(s *stageState) (*keyChain, error) {
	baseDigest, err := s.base.Digest()
	if err != nil {
		return nil, err
	}
	comp := layerCompression(b.o.compression)
	build := cache.Text(cache.InputBuild, fmt.Sprintf("reproducible=%v compression=%s/%d", b.o.reproducible,
		comp.Algorithm, comp.Level))
	return &keyChain{scope: s.scope.Clone(), workdir: s.cfg.Config.WorkingDir, user: s.cfg.Config.User,
		shell: s.cfg.Config.Shell, build: build, parent: cache.NewKey(cache.Key(baseDigest.String()), build)}, nil
}

// keyStep fills sc's inputs, key and cacheability for raw and moves the chain past it. It
// returns false when the key cannot be known (the step reports an expansion error; other
// causes are warned about here).
func (b *build) keyStep(ctx context.Context, stage int, kc *keyChain, raw instructions.Command, sc *stepCache) bool {
	cmd, err := b.df.Expand(raw, kc.scope)
	if err != nil {
		return false
	}
	sc.inputs = []cache.Input{
		cache.Text(cache.InputInstruction, sourceOf(cmd)),
		cache.Map(cache.InputArgs, kc.scope.Args()),
		cache.List(cache.InputEnv, kc.scope.Env()),
		cache.Text(cache.InputConfig, fmt.Sprintf("workdir=%q user=%q shell=%q", kc.workdir, kc.user, kc.shell)),
	}
	kc.advance(cmd)
	more, cacheable, err := b.fileInputs(ctx, stage, cmd, kc.workdir)
	if err != nil {
		b.warn("%s:%d: not cached: %v", b.df.Name, lineOf(raw), err)
		return false
	}
	sc.inputs, sc.cacheable = append(sc.inputs, more...), cacheable
	sc.key = cache.NewKey(kc.parent, sc.inputs...)
	kc.parent = sc.key // the steps after a --link step still depend on all before it
	if isLink(cmd) {
		sc.parent, sc.inputs = "", linkInputs(kc.build, kc.workdir, sc.inputs)
		sc.key = cache.NewKey("", sc.inputs...)
	}
	return true
}

// advance applies what cmd changes in the scope and config, as the step will.
func (kc *keyChain) advance(cmd instructions.Command) {
	switch c := cmd.(type) {
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			kc.scope.SetEnv(kv.Key, kv.Value)
		}
	case *instructions.ArgCommand:
		for _, a := range c.Args {
			kc.scope.Declare(a)
		}
	case *instructions.UserCommand:
		kc.user = c.User
	case *instructions.ShellCommand:
		kc.shell = append([]string(nil), c.Shell...)
	case *instructions.WorkdirCommand:
		dir := c.Path
		if !path.IsAbs(dir) {
			dir = path.Join("/", kc.workdir, dir)
		}
		kc.workdir = path.Clean(dir)
	}
}

// fileInputs are the inputs of a step that changes files beyond its text (what its mounts and
// sources hold), and whether the step's layer is cached at all.
func (b *build) fileInputs(ctx context.Context, stage int, cmd instructions.Command, workdir string) ([]cache.Input, bool, error) {
	cc := b.o.cache
	switch c := cmd.(type) {
	case *instructions.WorkdirCommand:
		return nil, true, nil
	case *instructions.RunCommand:
		more, err := b.mountInputs(ctx, stage, c, workdir)
		return more, cc.runLayers, err
	case *instructions.CopyCommand:
		more, err := b.copyInputs(ctx, stage, copyKeySpec{sd: c.SourcesAndDest, from: c.From,
			excludes: c.ExcludePatterns, parents: c.Parents})
		return more, cc.copyLayers, err
	case *instructions.AddCommand:
		more, err := b.copyInputs(ctx, stage, copyKeySpec{sd: c.SourcesAndDest, excludes: c.ExcludePatterns,
			checksum: c.Checksum, add: true})
		return more, cc.copyLayers, err
	}
	return nil, false, nil
}

// mountInputs are the inputs of a RUN beyond its text (which spells out its mounts): what its
// bind mounts show (each context file, or the digest of the stage or image read) and what
// seeds a cache mount with from=. The content of cache, tmpfs, secret and ssh mounts never
// enters a key: reusing whatever a cache holds is its point, and a secret's value must stay
// out of everything that is stored.
func (b *build) mountInputs(ctx context.Context, stage int, c *instructions.RunCommand, workdir string) ([]cache.Input, error) {
	if workdir == "" {
		workdir = "/"
	}
	mounts, err := dockerfile.RunMounts(c, workdir)
	if err != nil {
		return nil, err
	}
	var out []cache.Input
	for _, m := range mounts {
		readsFiles := m.Type == instructions.MountTypeBind || m.Type == instructions.MountTypeCache
		switch {
		case m.Type == instructions.MountTypeBind && m.From == "":
			files, err := cache.FileInputs(cache.Sources{Root: b.o.contextDir, Paths: []string{m.Source},
				Exclude: b.dockerignore.Excluded, ExcludeDir: b.dockerignore.ExcludedDir})
			if err != nil {
				return nil, err
			}
			out = append(out, files...)
		case readsFiles && m.From != "":
			d, err := b.fromDigest(ctx, stage, m.From)
			if err != nil {
				return nil, err
			}
			out = append(out, cache.Text(cache.InputFrom, d))
		}
	}
	return out, nil
}

// fromDigest is the digest of what COPY --from reads: an earlier stage's image, or an image.
func (b *build) fromDigest(ctx context.Context, stage int, from string) (string, error) {
	if _, isStage := b.stageIndex(from, stage); !isStage {
		if nc, ok := b.namedContext(from); ok {
			return b.contextDigest(ctx, nc)
		}
	}
	if idx, ok := b.stageIndex(from, stage); ok {
		r, ok := b.results[idx]
		if !ok {
			return "", fmt.Errorf("--from=%s: stage %d was not built", from, idx)
		}
		d, err := r.image.Digest()
		if err != nil {
			return "", fmt.Errorf("--from=%s: %w", from, err)
		}
		return "stage:" + d.String(), nil
	}
	img, err := registry.Pull(ctx, from, b.o.pull...)
	if err != nil {
		return "", fmt.Errorf("--from=%s: %w", from, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("--from=%s: %w", from, err)
	}
	return "image:" + d.String(), nil
}

// linkInputs are the inputs of a COPY/ADD --link step: its own (the instruction, the WORKDIR a
// relative destination is in, what it reads, the layer options), without the parent's key,
// the args, env, USER and SHELL, none of which can change its layer (copylink.go).
func linkInputs(build cache.Input, workdir string, inputs []cache.Input) []cache.Input {
	out := []cache.Input{build, cache.Text(cache.InputConfig, fmt.Sprintf("workdir=%q", workdir))}
	for _, in := range inputs {
		switch in.Name {
		case cache.InputArgs, cache.InputEnv, cache.InputConfig:
			continue
		}
		out = append(out, in)
	}
	return out
}
