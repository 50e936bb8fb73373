// Package warmer fills a base image cache directory (the executor's --cache-dir) ahead of
// builds, as Kaniko's warmer does: each image's manifest, config and layers are stored where
// the executor reads them (cache.BaseCache), with the reference's resolution recorded so a
// build that cannot reach the registry still finds its base. cmd/warmer is its command line;
// CI tools can call Warm directly.
package warmer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/cache"
	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/registry"
)

// Log receives the warmer's progress. executor.Logger is one; failed images go to an
// Errorf(format string, args ...any) method when the Log has one, to Warnf otherwise.
type Log interface {
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
}

// Ref is one image to cache: a reference and, when not "", the platform (os/arch[/variant])
// to resolve it for instead of WithPlatform's (a Dockerfile's FROM --platform).
type Ref struct {
	Image    string
	Platform string
}

// Refs makes Refs of plain image references.
func Refs(images ...string) []Ref {
	out := make([]Ref, len(images))
	for i, im := range images {
		out[i] = Ref{Image: im}
	}
	return out
}

// Result is what Warm did with one image.
type Result struct {
	Ref        Ref
	Digest     v1.Hash       // the image manifest's digest (zero if resolving failed)
	Skipped    bool          // already cached in full (and not forced): nothing downloaded
	Layers     int           // layers of the image
	Downloaded int64         // compressed bytes downloaded
	Duration   time.Duration // time spent on this image
	Err        error         // why the image could not be cached
}

// Option configures Warm.
type Option func(*options)

type options struct {
	pull     []registry.Option
	platform v1.Platform
	force    bool
	log      Log
	jobs     int
	every    time.Duration // progress lines of a layer still downloading
}

// WithPullOptions sets how images are pulled: credentials, mirrors, TLS and insecure registries
// (see executor.WarmerConfig.PullOptions).
func WithPullOptions(opts ...registry.Option) Option {
	return func(o *options) { o.pull = append(o.pull, opts...) }
}

// WithPlatform sets the platform an index is resolved to (default: this machine's, as the
// executor's default).
func WithPlatform(p v1.Platform) Option { return func(o *options) { o.platform = p } }

// WithForce downloads every image again, even one cached in full (--force); the new copies
// replace the cached ones once verified.
func WithForce(on bool) Option { return func(o *options) { o.force = on } }

// WithLog sends progress (per image and layer, sizes and durations) and warnings to l.
func WithLog(l Log) Option { return func(o *options) { o.log = l } }

// WithJobs sets how many layers of an image are downloaded at once (default 3).
func WithJobs(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.jobs = n
		}
	}
}

// Warm caches every image of refs in dir, one after the other. An image already cached in full
// is reported and skipped unless WithForce; a tag is resolved by the registry either way, and
// its resolution recorded. A failure does not stop the others: the error joins every failed
// image's, each naming the image and its registry. The results are in the order of refs.
func Warm(ctx context.Context, dir string, refs []Ref, opts ...Option) ([]Result, error) {
	def := dockerfile.DefaultPlatform() // the executor's default, so both record the same platform
	o := &options{platform: v1.Platform{OS: def.OS, Architecture: def.Architecture, Variant: def.Variant}, log: discard{}, jobs: 3, every: 10 * time.Second}
	for _, opt := range opts {
		opt(o)
	}
	bc := cache.NewBaseCache(dir, cache.BaseCacheWarnings(o.log.Warnf))
	results := make([]Result, len(refs))
	var errs []error
	for i, r := range refs {
		results[i] = warmOne(ctx, bc, dir, r, o) // after a cancel, each fails at once saying so
		if err := results[i].Err; err != nil {
			errorf(o.log, "%v", err)
			errs = append(errs, err)
		}
	}
	return results, errors.Join(errs...)
}

// DockerfileRefs returns the images the stages of a Dockerfile start FROM, in order and without
// repeats: stage names and scratch are skipped, and ARGs before the first FROM are expanded
// with buildArgs (NAME=VALUE, or NAME taken from lookupEnv) as the executor expands them for
// target (the zero value: this machine's platform).
func DockerfileRefs(src dockerfile.Source, buildArgs []string, lookupEnv func(string) (string, bool), target dockerfile.Platform) ([]Ref, error) {
	df, err := dockerfile.Parse(src)
	if err != nil {
		return nil, err
	}
	args, err := dockerfile.ParseBuildArgs(buildArgs, lookupEnv)
	if err != nil {
		return nil, fmt.Errorf("--build-arg: %w", err)
	}
	meta, err := df.Meta(args, target, dockerfile.Platform{})
	if err != nil {
		return nil, err
	}
	var out []Ref
	seen := map[Ref]bool{}
	for i := range df.Stages {
		base, err := df.BaseOf(i, meta)
		if err != nil {
			return nil, err
		}
		r := Ref{Image: base.Image, Platform: base.Platform}
		if base.Stage >= 0 || base.Scratch || seen[r] {
			continue
		}
		seen[r] = true
		out = append(out, r)
	}
	return out, nil
}

// platformOf is r's platform, or the default.
func platformOf(r Ref, def v1.Platform) (v1.Platform, error) {
	if r.Platform == "" {
		return def, nil
	}
	p, err := dockerfile.ParsePlatform(r.Platform)
	if err != nil {
		return v1.Platform{}, fmt.Errorf("platform %s of %s: %w", r.Platform, r.Image, err)
	}
	return v1.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}, nil
}

// registryOf names the registry of an image reference, for errors.
func registryOf(image string) string {
	ref, err := name.ParseReference(image)
	if err != nil {
		return "?"
	}
	return ref.Context().RegistryStr()
}

// errorf logs at error level when log can (executor.Logger does), else as a warning.
func errorf(log Log, format string, args ...any) {
	if e, ok := log.(interface{ Errorf(string, ...any) }); ok {
		e.Errorf(format, args...)
		return
	}
	log.Warnf(format, args...)
}

type discard struct{}

func (discard) Infof(string, ...any) {}
func (discard) Warnf(string, ...any) {}
