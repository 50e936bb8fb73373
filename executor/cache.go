package executor

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/cache"
	"github.com/kilnbuild/kiln/internal/units"
	"github.com/kilnbuild/kiln/registry"
)

// LayerCacheDir is the subdirectory of --cache-dir that keeps the layers a build made (the
// local layer cache); base images are in <cache-dir>/blobs, cache mounts in <cache-dir>/mounts.
const LayerCacheDir = "layercache"

// cacheOptions turns --cache, --cache-repo, --cache-dir, --cache-dir-layers, --cache-dir-max-size, --cache-ttl,
// --cache-copy-layers, --cache-run-layers and --no-push-cache into builder options.
// --compressed-caching is accepted and has no effect: cached layers are the build's own
// compressed layer files.
//
// With --cache-dir, the layers built are kept in <cache-dir>/layercache and looked up there
// before the cache repository; with no repository (--no-push and no --cache-repo) the local
// cache is the only one. Like Kaniko, a cache repository defaults to "<first destination's
// repository>/cache", and push access to it is checked first; unlike Kaniko, a refused check
// only warns and makes the repository read-only, since a cache must never fail a build.
func cacheOptions(ctx context.Context, c *Config, pushOpts []registry.Option, log Log) ([]builder.Option, error) {
	if !c.Cache {
		return nil, nil
	}
	var opts []builder.Option
	if c.CacheDir != "" {
		opts = append(opts, builder.WithBaseImageCache(cache.NewBaseCache(c.CacheDir, cache.BaseCacheWarnings(log.Warnf))))
	}
	repo, err := cacheRepo(c)
	if err != nil {
		return nil, err
	}
	readOnly := c.NoPushCache
	var store cache.Store
	switch dir, isLayout := strings.CutPrefix(repo, "oci:"); {
	case repo == "":
	case isLayout:
		store = cache.NewLayoutStore(dir)
	default:
		rs, err := cache.NewRegistryStore(repo, pushOpts...)
		if err != nil {
			return nil, fmt.Errorf("--cache-repo: %w", err)
		}
		store = rs
		if !readOnly && !c.SkipPushPermissionCheck {
			if err := registry.CheckPushAccess(ctx, []string{repo}, pushOpts...); err != nil {
				log.Warnf("cache repository %s refuses pushes, so the cache is read-only for this build: %v", repo, err)
				readOnly = true
			}
		}
	}
	cacheOpts := []builder.CacheOption{builder.CacheTTL(c.CacheTTL), builder.CacheRunLayers(c.CacheRunLayers),
		builder.CacheCopyLayers(c.CacheCopyLayers), builder.CacheReadOnly(readOnly)}
	local, err := localCacheOption(c)
	if err != nil {
		return nil, err
	}
	if local != nil {
		cacheOpts = append(cacheOpts, local)
	}
	log.Infof("Layer cache: %s (ttl %s, RUN %v, COPY/ADD %v, repository read-only %v)", describeCaches(c, store),
		c.CacheTTL, c.CacheRunLayers, c.CacheCopyLayers, readOnly)
	return append(opts, builder.WithCache(store, cacheOpts...)), nil
}

// localCacheOption is the local layer cache of --cache-dir, bounded by --cache-dir-max-size
// (which counts the base images in <cache-dir> too); nil without --cache-dir or with
// --cache-dir-layers=false.
func localCacheOption(c *Config) (builder.CacheOption, error) {
	if c.CacheDir == "" || !c.CacheDirLayers {
		return nil, nil
	}
	// The base image cache's directories (its blobs, and the warmer's manifests and tag
	// resolutions) and the directory-mode states count towards the bound; they are not pruned
	// here (see cache.PruneOptions; the states are bounded on their own). The base layers'
	// unpack forms count too, and are the first to go.
	var also []string
	for _, d := range []string{"blobs", "manifests", "refs", StateCacheDir} {
		also = append(also, filepath.Join(c.CacheDir, d))
	}
	prune := cache.PruneOptions{AlsoCount: also, Derived: []string{filepath.Join(c.CacheDir, cache.FormsDir)}}
	if c.CacheDirMaxSize != "" {
		n, err := units.ParseBytes(c.CacheDirMaxSize)
		if err != nil {
			return nil, fmt.Errorf("--cache-dir-max-size: %w", err)
		}
		prune.MaxSize = n
	}
	return builder.CacheLocal(cache.NewDirStore(filepath.Join(c.CacheDir, LayerCacheDir)), prune), nil
}

// describeCaches names the stores in the order they are looked up.
func describeCaches(c *Config, repo cache.Store) string {
	var parts []string
	if c.CacheDir != "" && c.CacheDirLayers {
		p := filepath.Join(c.CacheDir, LayerCacheDir)
		if c.CacheDirMaxSize != "" {
			n, _ := units.ParseBytes(c.CacheDirMaxSize)
			p += " (at most " + units.Bytes(n) + " with base images)"
		}
		parts = append(parts, p)
	}
	if repo != nil {
		parts = append(parts, repo.String())
	}
	return strings.Join(parts, ", then ")
}

// cacheRepo is --cache-repo, or the first destination's repository with "/cache" appended
// (not with --no-push), or "" when there is neither but a --cache-dir to keep layers in.
func cacheRepo(c *Config) (string, error) {
	if c.CacheRepo != "" {
		return c.CacheRepo, nil
	}
	if c.NoPush || len(c.Destinations) == 0 {
		if c.CacheDir != "" && c.CacheDirLayers {
			return "", nil
		}
		return "", fmt.Errorf("--cache needs --cache-repo or --cache-dir when there is no pushed --destination to derive a repository from")
	}
	ref, err := name.ParseReference(c.Destinations[0], name.WeakValidation)
	if err != nil {
		return "", fmt.Errorf("--destination %s: %w", c.Destinations[0], err)
	}
	return ref.Context().Name() + "/cache", nil
}
