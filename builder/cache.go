package builder

import (
	"sync"
	"time"

	"github.com/kilnbuild/kiln/cache"
)

// cacheConfig is how a build uses its layer cache. WithCache makes one per build.
type cacheConfig struct {
	store        cache.Store // the cache repository (nil: only a local store)
	ttl          time.Duration
	runLayers    bool
	copyLayers   bool
	readOnly     bool
	writeTimeout time.Duration
	local        *cache.DirStore // CacheLocal (nil: none)
	localPrune   cache.PruneOptions

	once      sync.Once
	effective cache.Store // the store lookups and writes use (see build.cacheStore)

	mu       sync.Mutex
	outcomes []cacheOutcome // per looked-up step, for the summary
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
		if store == nil && c.local == nil {
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

// CacheReadOnly makes the build read the cache repository but never write it
// (--no-push-cache). A CacheLocal store is still written.
func CacheReadOnly(on bool) CacheOption { return func(c *cacheConfig) { c.readOnly = on } }

// CacheWriteTimeout bounds how long Build waits at its end for cache writes still running
// (default 10m); writes still running then are cancelled with a warning.
func CacheWriteTimeout(d time.Duration) CacheOption {
	return func(c *cacheConfig) { c.writeTimeout = d }
}

// CacheLocal looks entries up in s (the layer cache of --cache-dir) before the cache repository,
// and writes every entry there too; WithCache(nil, CacheLocal(s)) uses s alone. An entry found
// only in the repository is copied into s as it is read. After the build (and its cache
// writes), s is pruned with prune. A directory the build would snapshot is not used: in pod
// mode one that is no mounted volume nor below the executor's directory (an EventNote: a pod
// without a cache volume is common), in directory mode one inside the root (a warning).
func CacheLocal(s *cache.DirStore, prune cache.PruneOptions) CacheOption {
	return func(c *cacheConfig) { c.local, c.localPrune = s, prune }
}

// WithBaseImageCache keeps base images' layers (and those of COPY --from images) in c, so a
// later build with the same cache directory does not download them again (--cache-dir).
func WithBaseImageCache(c *cache.BaseCache) Option { return func(o *options) { o.baseCache = c } }
