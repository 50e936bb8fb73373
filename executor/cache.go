package executor

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/cache"
	"github.com/kilnbuild/kiln/registry"
)

// cacheOptions turns --cache, --cache-repo, --cache-dir, --cache-ttl, --cache-copy-layers,
// --cache-run-layers and --no-push-cache into builder options. --compressed-caching is
// accepted and has no effect: cached layers are the build's own compressed layer files.
// Like Kaniko, a cache repository defaults to "<first destination's repository>/cache", and
// push access to it is checked first; unlike Kaniko, a refused check only warns and makes the
// cache read-only, since a cache must never fail a build.
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
	if dir, ok := strings.CutPrefix(repo, "oci:"); ok {
		store = cache.NewLayoutStore(dir)
	} else {
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
	log.Infof("Layer cache: %s (ttl %s, RUN %v, COPY/ADD %v, read-only %v)", store, c.CacheTTL,
		c.CacheRunLayers, c.CacheCopyLayers, readOnly)
	return append(opts, builder.WithCache(store,
		builder.CacheTTL(c.CacheTTL),
		builder.CacheRunLayers(c.CacheRunLayers),
		builder.CacheCopyLayers(c.CacheCopyLayers),
		builder.CacheReadOnly(readOnly))), nil
}

// cacheRepo is --cache-repo, or the first destination's repository with "/cache" appended.
func cacheRepo(c *Config) (string, error) {
	if c.CacheRepo != "" {
		return c.CacheRepo, nil
	}
	if len(c.Destinations) == 0 {
		return "", fmt.Errorf("--cache needs --cache-repo when there is no --destination to derive it from")
	}
	ref, err := name.ParseReference(c.Destinations[0], name.WeakValidation)
	if err != nil {
		return "", fmt.Errorf("--destination %s: %w", c.Destinations[0], err)
	}
	return ref.Context().Name() + "/cache", nil
}
