package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/internal/units"
	"github.com/kilnbuild/kiln/registry"
	"github.com/kilnbuild/kiln/snapshot"
)

// Result is what a Run produced.
type Result struct {
	// Image is the built image.
	Image v1.Image
	// Digest is the digest the destinations now hold (the image's own when nothing was pushed).
	Digest v1.Hash
	// Destinations are the references pushed (none with --no-push).
	Destinations []string
}

// errNoRoot keeps a library user from building into / by leaving out an option.
var errNoRoot = errors.New("executor.Run needs a root: WithPodRoot() (build into /, in a build pod) or WithDirectoryRoot(dir)")

// Run is the executor with the flags in c: it checks them, fetches the build context, builds
// the Dockerfile into the chosen root (WithPodRoot or WithDirectoryRoot; there is no default),
// then writes the tarball and OCI layout, pushes and writes the digest files the flags ask
// for. A failing RUN's error is a *builder.RunError carrying its exit code. Run changes
// nothing in the process's environment; cmd/executor does the pod's setup (--kaniko-dir
// relocation, DOCKER_CONFIG, signals) around it.
func Run(ctx context.Context, c *Config, opts ...Option) (_ Result, err error) {
	o, err := makeRunOptions(c, opts)
	if err != nil {
		return Result{}, err
	}
	if !o.rootSet {
		return Result{}, errNoRoot
	}
	if err := c.Validate(); err != nil {
		return Result{}, err
	}
	if o.podMode && !c.Force {
		if err := CheckPodLike(c.KanikoDir); err != nil {
			return Result{}, err
		}
	}
	c = directoryModeCacheDir(c, o)
	ctx, rec := startTimings(ctx, c, o)
	defer func() { err = finishTimings(rec, c, o, err) }()
	contextWork := filepath.Join(c.KanikoDir, "buildcontext")
	if !o.podMode {
		// Never the host's /kaniko: archives and clones go to a directory of this run's own.
		dir, err := os.MkdirTemp("", "kiln-context-")
		if err != nil {
			return Result{}, err
		}
		defer os.RemoveAll(dir)
		contextWork = dir
	}
	contextDir, err := prepareContext(ctx, c, o, contextWork)
	if err != nil {
		return Result{}, err
	}
	img, pushOpts, err := build(ctx, c, o, contextDir)
	if err != nil {
		return Result{}, err
	}
	return writeOutputs(ctx, c, img, pushOpts, o.log)
}

// build parses the Dockerfile, maps the flags to builder options and builds the image. It
// returns the push options for the outputs.
func build(ctx context.Context, c *Config, o *runOptions, contextDir string) (v1.Image, []registry.Option, error) {
	dfPath, err := resolveDockerfile(c.Dockerfile, contextDir)
	if err != nil {
		return nil, nil, err
	}
	src, err := dockerfile.FromFile(dfPath)
	if err != nil {
		return nil, nil, err
	}
	buildArgs, err := dockerfile.ParseBuildArgs(c.BuildArgs, o.lookupEnv)
	if err != nil {
		return nil, nil, fmt.Errorf("--build-arg: %w", err)
	}
	pullOpts, pushOpts, err := c.RegistryOptions(o.lookupEnv)
	if err != nil {
		return nil, nil, err
	}
	if o.keychain != nil {
		pullOpts = append(pullOpts, registry.WithKeychain(o.keychain))
		pushOpts = append(pushOpts, registry.WithKeychain(o.keychain))
	}
	if !c.NoPush && !c.SkipPushPermissionCheck && len(c.Destinations) > 0 {
		if err := registry.CheckPushAccess(ctx, c.Destinations, pushOpts...); err != nil {
			return nil, nil, err
		}
	}
	opts, err := builderOptions(ctx, c, o, contextDir, buildArgs, pullOpts, pushOpts)
	if err != nil {
		return nil, nil, err
	}
	img, err := builder.Build(ctx, src, opts...)
	return img, pushOpts, err
}

// builderOptions maps the build flags (root, context, snapshots, compression, cache,
// platform, labels) onto builder options.
func builderOptions(ctx context.Context, c *Config, o *runOptions, contextDir string, buildArgs dockerfile.BuildArgs,
	pullOpts, pushOpts []registry.Option) ([]builder.Option, error) {
	opts := []builder.Option{rootOption(c, o),
		builder.WithReporter(o.reporter),
		builder.WithContextDir(contextDir),
		builder.WithBuildArgs(buildArgs),
		builder.WithTarget(c.Target),
		builder.WithPullOptions(pullOpts...),
		builder.WithIgnorePaths(c.IgnorePaths...),
		builder.WithIgnoreVarRun(c.IgnoreVarRun),
		builder.WithSingleSnapshot(c.SingleSnapshot),
		builder.WithReproducible(c.Reproducible),
		builder.WithSnapshotMode(c.SnapshotMode),
		builder.WithCompression(snapshot.Compression{Algorithm: c.Compression, Level: compressionLevel(c.CompressionLevel)}),
		builder.WithCleanup(c.Cleanup),
		builder.WithForceBuildMetadata(c.ForceBuildMetadata),
		builder.WithExtractRetries(c.ImageFSExtractRetry),
		builder.WithParallelStages(c.MaxParallelStages),
	}
	if o.output != nil {
		opts = append(opts, builder.WithOutput(o.output))
	}
	if !o.podMode && o.workDir != "" {
		opts = append(opts, builder.WithWorkDir(o.workDir))
	}
	cacheOpts, err := cacheOptions(ctx, c, pushOpts, o.log)
	if err != nil {
		return nil, err
	}
	opts = append(opts, cacheOpts...)
	opts = append(opts, stateCacheOptions(c, o)...)
	mountOpts, err := mountOptions(c, o.lookupEnv)
	if err != nil {
		return nil, err
	}
	opts = append(opts, mountOpts...)
	ctxOpts, err := contextOptions(c, o)
	if err != nil {
		return nil, err
	}
	opts = append(opts, ctxOpts...)
	if c.CustomPlatform != "" {
		p, err := dockerfile.ParsePlatform(c.CustomPlatform)
		if err != nil {
			return nil, fmt.Errorf("--custom-platform: %w", err)
		}
		opts = append(opts, builder.WithPlatform(p))
	}
	if len(c.Labels) > 0 {
		labels := map[string]string{}
		for _, l := range c.Labels {
			k, v, _ := strings.Cut(l, "=")
			labels[k] = v
		}
		opts = append(opts, builder.WithLabels(labels))
	}
	return opts, nil
}

// StateCacheDir is the folder of --cache-dir where a directory-mode build keeps the unpacked
// layers its roots are mounted from (builder.WithStateCache), so a rebuild unpacks nothing.
const StateCacheDir = "rootstates"

// stateCacheOptions keeps unpacked layers in --cache-dir for directory-mode builds with the
// layer cache on (a pod cannot mount the overlays that make them pay off), bounded by
// --cache-dir-max-size; --cache-dir-layers=false keeps them out, as it keeps built layers out.
func stateCacheOptions(c *Config, o *runOptions) []builder.Option {
	if o.podMode || !c.Cache || c.CacheDir == "" || !c.CacheDirLayers {
		return nil
	}
	var opts []builder.StateCacheOption
	if n, err := units.ParseBytes(c.CacheDirMaxSize); err == nil && n > 0 { // checked by ParseFlags
		opts = append(opts, builder.StateCacheMaxSize(n))
	}
	return []builder.Option{builder.WithStateCache(filepath.Join(c.CacheDir, StateCacheDir), opts...)}
}

func rootOption(c *Config, o *runOptions) builder.Option {
	if o.podMode {
		return builder.WithPodRoot(c.KanikoDir)
	}
	return builder.WithDirectoryRoot(o.root)
}

// compressionLevel maps Kaniko's -1 ("the default") to the builder's 0 ("the default").
func compressionLevel(l int) int {
	if l < 0 {
		return 0
	}
	return l
}

// resolveDockerfile finds --dockerfile as given, or relative to the context as Kaniko does.
func resolveDockerfile(path, contextDir string) (string, error) {
	if _, err := os.Stat(path); err == nil {
		return filepath.Abs(path)
	}
	if !filepath.IsAbs(path) {
		p := filepath.Join(contextDir, path)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		return "", fmt.Errorf("--dockerfile: no Dockerfile at %s (nor at %s in the context)", path, p)
	}
	return "", fmt.Errorf("--dockerfile: no Dockerfile at %s", path)
}

// directoryModeCacheDir keeps a directory-mode build off the host's /cache: --cache-dir's
// default is a pod's cache volume, which on a machine is the host's own root. Only a --cache-dir
// given on the command line is used there; the default is dropped (no base-image cache, and RUN
// cache mounts under the work directory). c is not modified.
func directoryModeCacheDir(c *Config, o *runOptions) *Config {
	if o.podMode || c.cacheDirGiven || c.CacheDir != DefaultCacheDir {
		return c
	}
	cp := *c
	cp.CacheDir = ""
	return &cp
}
