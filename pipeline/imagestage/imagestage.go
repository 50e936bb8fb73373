// Package imagestage is the pipeline's image stage: the app's image built from its Dockerfile
// with the executor's flags, as the executor container of a CI pod would build it, but
// in-process and in directory mode (never into this machine's "/"), then pushed.
//
// ExecutorArgs is the one mapping from the pipeline file's image section to executor flags:
// render writes exactly these arguments into the CI files, and Run parses the same ones with
// the executor's own flag set, so any executor flag in image.flags works in both places.
package imagestage

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/executor"
	"github.com/kilnbuild/kiln/pipeline/spec"
)

// Logger is what the stage logs through; the executor's *executor.Logger is one.
type Logger interface {
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
}

// Options says where and how the image stage runs.
type Options struct {
	// Workspace is the host directory the image's context is relative to (default: the
	// current directory).
	Workspace string
	// WorkDir holds the build's root and layers (outside Workspace); "" = a temporary
	// directory. What the stage puts there is removed when it ends.
	WorkDir string
	// DockerConfig is the directory of the config.json holding registry credentials (the
	// file the executor reads in a pod at /kaniko/.docker); "" = $DOCKER_CONFIG or ~/.docker.
	DockerConfig string
	// ExtraFlags are executor flags added after the pipeline file's (e.g. --insecure-registry
	// for a local registry). --cache-dir has no default here: a pod's /cache is not this
	// machine's; name one to keep base image layers between runs.
	ExtraFlags []string
	// Log receives progress: every step, cache hit and miss, the push and the duration.
	Log Logger
	// Reporter, if set, receives the build's events instead of Log.
	Reporter builder.Reporter
	// Output receives RUN's output; nil: each line is logged.
	Output io.Writer
}

// Result is what the image stage built and pushed.
type Result struct {
	Digest       v1.Hash
	Destinations []string
	// Steps counts the instructions run or taken from the cache, over all stages built;
	// CacheHits and CacheMisses the cacheable ones found in and missing from the layer cache.
	Steps, CacheHits, CacheMisses int
	Duration                      time.Duration
}

// Run builds img with the workspace at o.Workspace and pushes it to its destinations. The
// executor's flags come from ExecutorArgs and o.ExtraFlags; a flag the executor does not know,
// or a bad value, is an error naming image.flags and the flag. Registry errors name the
// registry and what it answered.
func Run(ctx context.Context, img *spec.Image, o Options) (Result, error) {
	start := time.Now()
	log := o.Log
	if log == nil {
		log = nopLogger{}
	}
	ws, err := filepath.Abs(o.Workspace)
	if err != nil {
		return Result{}, err
	}
	cfg, err := parseFlags(img, ws, o.ExtraFlags)
	if err != nil {
		return Result{}, err
	}
	for _, w := range cfg.Warnings {
		log.Warnf("image.flags: %s", w)
	}
	root, work, cleanup, err := workDirs(o.WorkDir, ws)
	if err != nil {
		return Result{}, err
	}
	defer cleanup()

	events := &counter{next: o.Reporter}
	if events.next == nil {
		events.next = executor.ReportTo(log)
	}
	opts := []executor.Option{executor.WithDirectoryRoot(root), executor.WithWorkDir(work),
		executor.WithLogger(log), executor.WithReporter(events)}
	if o.DockerConfig != "" {
		opts = append(opts, executor.WithDockerConfig(o.DockerConfig))
	}
	if o.Output != nil {
		opts = append(opts, executor.WithOutput(o.Output))
	}
	log.Infof("Building %s from %s", strings.Join(cfg.Destinations, ", "), strings.TrimPrefix(cfg.Context, "dir://"))
	res, err := executor.Run(ctx, cfg, opts...)
	if err != nil {
		return Result{}, err
	}
	r := Result{Digest: res.Digest, Destinations: res.Destinations, Duration: time.Since(start),
		Steps: int(events.steps.Load()), CacheHits: int(events.hits.Load()), CacheMisses: int(events.misses.Load())}
	log.Infof("Image stage done in %s: %s (%d steps; layer cache: %d hits, %d misses)",
		r.Duration.Round(time.Millisecond), r.Digest, r.Steps, r.CacheHits, r.CacheMisses)
	return r, nil
}
