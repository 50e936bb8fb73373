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
	cc := b.o.cache
	baseDigest, err := s.base.Digest()
	if err != nil {
		b.warn("stage %d: no cache: digest of its base image: %v", s.index, err)
		return nil
	}
	build := cache.Text(cache.InputBuild, fmt.Sprintf("reproducible=%v compression=%s/%d", b.o.reproducible,
		layerCompression(b.o.compression).Algorithm, layerCompression(b.o.compression).Level))
	parent := cache.NewKey(cache.Key(baseDigest.String()), build)
	scope := s.scope.Clone()
	workdir, user, shell := s.cfg.Config.WorkingDir, s.cfg.Config.User, s.cfg.Config.Shell
	out := make([]*stepCache, len(cmds))
	broken := false
	now := time.Now()
	for i, raw := range cmds {
		sc := &stepCache{parent: parent, lineage: cache.LineageOf(b.df.Name, s.index, stageBase, i),
			result: make(chan cache.Result, 1)}
		out[i] = sc
		if broken {
			continue
		}
		cmd, err := b.df.Expand(raw, scope)
		if err != nil {
			broken = true // the step reports the error
			continue
		}
		sc.inputs = []cache.Input{
			cache.Text(cache.InputInstruction, sourceOf(cmd)),
			cache.Map(cache.InputArgs, scope.Args()),
			cache.List(cache.InputEnv, scope.Env()),
			cache.Text(cache.InputConfig, fmt.Sprintf("workdir=%q user=%q shell=%q", workdir, user, shell)),
		}
		switch c := cmd.(type) {
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				scope.SetEnv(kv.Key, kv.Value)
			}
		case *instructions.ArgCommand:
			for _, a := range c.Args {
				scope.Declare(a)
			}
		case *instructions.UserCommand:
			user = c.User
		case *instructions.ShellCommand:
			shell = append([]string(nil), c.Shell...)
		case *instructions.WorkdirCommand:
			dir := c.Path
			if !path.IsAbs(dir) {
				dir = path.Join("/", workdir, dir)
			}
			workdir = path.Clean(dir)
			sc.cacheable = true
		case *instructions.RunCommand:
			more, err := b.mountInputs(ctx, s.index, c, workdir)
			if err != nil {
				b.warn("%s:%d: not cached: %v", b.df.Name, lineOf(raw), err)
				broken = true
				continue
			}
			sc.inputs = append(sc.inputs, more...)
			sc.cacheable = cc.runLayers
		case *instructions.CopyCommand:
			more, err := b.copyInputs(ctx, s.index, copyKeySpec{sd: c.SourcesAndDest, from: c.From,
				excludes: c.ExcludePatterns, parents: c.Parents})
			if err != nil {
				b.warn("%s:%d: not cached: %v", b.df.Name, lineOf(raw), err)
				broken = true
				continue
			}
			sc.inputs = append(sc.inputs, more...)
			sc.cacheable = cc.copyLayers
		case *instructions.AddCommand:
			more, err := b.copyInputs(ctx, s.index, copyKeySpec{sd: c.SourcesAndDest, excludes: c.ExcludePatterns,
				checksum: c.Checksum, add: true})
			if err != nil {
				b.warn("%s:%d: not cached: %v", b.df.Name, lineOf(raw), err)
				broken = true
				continue
			}
			sc.inputs = append(sc.inputs, more...)
			sc.cacheable = cc.copyLayers
		}
		sc.key = cache.NewKey(parent, sc.inputs...)
		parent = sc.key // the steps after a --link step still depend on all before it
		if isLink(cmd) {
			sc.parent, sc.inputs = "", linkInputs(build, workdir, sc.inputs)
			sc.key = cache.NewKey("", sc.inputs...)
		}
		if sc.cacheable {
			go func() {
				sc.result <- cache.Lookup(ctx, cc.store, sc.key, sc.parent, sc.inputs, sc.lineage, cc.ttl, now)
			}()
		}
	}
	return out
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
