package builder

import (
	"time"

	"github.com/kilnbuild/kiln/cache"
)

// cacheConfig is how a build uses its layer cache.
type cacheConfig struct {
	store        cache.Store
	ttl          time.Duration
	runLayers    bool
	copyLayers   bool
	readOnly     bool
	writeTimeout time.Duration
}

// CacheOption configures WithCache.
type CacheOption func(*cacheConfig)

// WithCache looks up every RUN (and, with CacheCopyLayers, COPY and ADD) in store before
// running it: a hit reuses the stored layer, and the stage's root is only unpacked when a later
// instruction of the stage misses. A miss runs the instruction and stores its layer in the
// background; the build waits for those writes at its end (see CacheWriteTimeout), and a write
// that fails is a warning, never a failed build. WORKDIR is cached whenever a cache is set: it
// is cheap, and a cached one spares unpacking the root. --single-snapshot builds do not use the
// cache (their one layer has no instruction to key it by).
func WithCache(store cache.Store, opts ...CacheOption) Option {
	return func(o *options) {
		c := &cacheConfig{store: store, ttl: 336 * time.Hour, runLayers: true, writeTimeout: 10 * time.Minute}
		for _, opt := range opts {
			opt(c)
		}
		o.cache = c
		if store == nil {
			o.cache = nil
		}
	}
}

// CacheTTL sets how old an entry may be and still hit (default 336h, Kaniko's; 0: no limit).
func CacheTTL(d time.Duration) CacheOption { return func(c *cacheConfig) { c.ttl = d } }

// CacheRunLayers sets whether RUN instructions are cached (default true, as Kaniko).
func CacheRunLayers(on bool) CacheOption { return func(c *cacheConfig) { c.runLayers = on } }

// CacheCopyLayers sets whether COPY and ADD instructions are cached (default false, as Kaniko).
// ADD of a URL is cached only with --checksum: without it, its content cannot be known before
// downloading it, and nothing after it in the stage is cached either.
func CacheCopyLayers(on bool) CacheOption { return func(c *cacheConfig) { c.copyLayers = on } }

// CacheReadOnly makes the build read the cache but never write it (--no-push-cache).
func CacheReadOnly(on bool) CacheOption { return func(c *cacheConfig) { c.readOnly = on } }

// CacheWriteTimeout bounds how long Build waits at its end for cache writes still running
// (default 10m); writes still running then are cancelled with a warning.
func CacheWriteTimeout(d time.Duration) CacheOption {
	return func(c *cacheConfig) { c.writeTimeout = d }
}

// WithBaseImageCache keeps base images' layers (and those of COPY --from images) in c, so a
// later build with the same cache directory does not download them again (--cache-dir).
func WithBaseImageCache(c *cache.BaseCache) Option { return func(o *options) { o.baseCache = c } }
