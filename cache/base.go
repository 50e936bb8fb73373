package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// BaseCache keeps the compressed layers of base images in a local directory (--cache-dir), by
// digest, so a second build with the same directory reads them from disk instead of the
// registry. The manifest and config are still fetched from the registry: resolving a tag to a
// digest must see the registry's current answer.
//
// A blob enters the cache only once it was read completely and matched its digest (written to
// a temporary file, renamed into place), so a full disk or an interrupted download never leaves
// a torn blob. A cached blob is checked against its digest again before its first use in a
// process: one that does not match (damaged on disk) is removed and read from the registry.
type BaseCache struct {
	dir  string
	warn func(format string, args ...any)

	mu       sync.Mutex
	verified map[v1.Hash]bool // blobs checked against their digest by this process
	failed   map[v1.Hash]bool // blobs this process could not store: not tried again
}

// BaseCacheOption configures NewBaseCache.
type BaseCacheOption func(*BaseCache)

// BaseCacheWarnings sends the cache's warnings (a blob that could not be stored, say on a full
// disk, or a damaged one that was removed) to warn. Without it they are dropped: the cache
// never fails a build either way.
func BaseCacheWarnings(warn func(format string, args ...any)) BaseCacheOption {
	return func(c *BaseCache) { c.warn = warn }
}

// NewBaseCache returns a cache in dir (created when the first layer is stored).
func NewBaseCache(dir string, opts ...BaseCacheOption) *BaseCache {
	c := &BaseCache{dir: dir, warn: func(string, ...any) {}, verified: map[v1.Hash]bool{}, failed: map[v1.Hash]bool{}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Image returns img with layers that read from the cache when their blob is there, and store
// their blob there (verified against its digest) the first time they are read completely.
func (c *BaseCache) Image(img v1.Image) v1.Image { return &cachedImage{Image: img, c: c} }

// Has reports whether the blob with digest d is in the cache.
func (c *BaseCache) Has(d v1.Hash) bool {
	_, err := os.Stat(c.path(d))
	return err == nil
}

func (c *BaseCache) path(d v1.Hash) string { return filepath.Join(c.dir, "blobs", d.Algorithm, d.Hex) }

// usable reports whether blob d is in the cache and matches its digest. The first call per
// blob hashes the file; a damaged one is removed, with a warning.
func (c *BaseCache) usable(d v1.Hash) bool {
	p := c.path(d)
	if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.verified[d] {
		return true
	}
	got, err := fileDigest(p, d.Algorithm)
	if err == nil && got == d {
		c.verified[d] = true
		return true
	}
	if err == nil {
		err = fmt.Errorf("its content has digest %s", got)
	}
	if rerr := os.Remove(p); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		c.warn("cached base layer %s is damaged (%v) and cannot be removed: %v; reading it from the registry", p, err, rerr)
		return false
	}
	c.warn("cached base layer %s is damaged (%v): removed; reading it from the registry", p, err)
	return false
}

// fileDigest hashes a file with the named algorithm (sha256 only).
func fileDigest(p, algorithm string) (v1.Hash, error) {
	if algorithm != "sha256" {
		return v1.Hash{}, fmt.Errorf("unsupported digest algorithm %q", algorithm)
	}
	f, err := os.Open(p)
	if err != nil {
		return v1.Hash{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return v1.Hash{}, err
	}
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, nil
}

// storeFailed warns, once per blob, that blob d could not be stored, and stops trying.
func (c *BaseCache) storeFailed(d v1.Hash, err error) {
	c.mu.Lock()
	first := !c.failed[d]
	c.failed[d] = true
	c.mu.Unlock()
	if first {
		c.warn("caching base layer %s in %s failed (the build goes on): %v", d, c.dir, err)
	}
}

func (c *BaseCache) hasFailed(d v1.Hash) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed[d]
}

type cachedImage struct {
	v1.Image
	c *BaseCache
}

func (i *cachedImage) Layers() ([]v1.Layer, error) {
	ls, err := i.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for n, l := range ls {
		out[n] = &cachedLayer{Layer: l, c: i.c}
	}
	return out, nil
}

func (i *cachedImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := i.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return &cachedLayer{Layer: l, c: i.c}, nil
}

// cachedLayer serves Compressed from the cache; Uncompressed is the wrapped layer's.
type cachedLayer struct {
	v1.Layer
	c *BaseCache
}

// Path is the cached blob's file when it is in the cache and intact ("" otherwise), so the
// builder reads it in place instead of copying it first as it does with downloads.
func (l *cachedLayer) Path() string {
	d, err := l.Layer.Digest()
	if err != nil || !l.c.usable(d) {
		return ""
	}
	return l.c.path(d)
}

func (l *cachedLayer) Compressed() (io.ReadCloser, error) {
	d, err := l.Layer.Digest()
	if err != nil {
		return nil, err
	}
	if l.c.usable(d) {
		if f, err := os.Open(l.c.path(d)); err == nil {
			return f, nil
		}
	}
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	if d.Algorithm != "sha256" || l.c.hasFailed(d) {
		return rc, nil // not cacheable here; still readable
	}
	dir := filepath.Dir(l.c.path(d))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		l.c.storeFailed(d, err)
		return rc, nil
	}
	tmp, err := os.CreateTemp(dir, d.Hex+".*.part")
	if err != nil {
		l.c.storeFailed(d, err)
		return rc, nil
	}
	return &teeToCache{rc: rc, tmp: tmp, h: sha256.New(), want: d, final: l.c.path(d), c: l.c}, nil
}

// teeToCache copies what is read into a temporary file and keeps it only when the whole blob
// was read and its digest matches: a partial or corrupt download never enters the cache.
type teeToCache struct {
	rc    io.ReadCloser
	tmp   *os.File
	h     hash.Hash
	want  v1.Hash
	final string
	c     *BaseCache
	eof   bool
	werr  error // the first error writing the temporary file (a full disk)
}

func (t *teeToCache) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	if n > 0 && t.werr == nil {
		t.h.Write(p[:n])
		if _, werr := t.tmp.Write(p[:n]); werr != nil {
			t.werr = werr
		}
	}
	if errors.Is(err, io.EOF) {
		t.eof = true
	}
	return n, err
}

func (t *teeToCache) Close() error {
	err := t.rc.Close()
	cerr := t.tmp.Close()
	if t.werr == nil {
		t.werr = cerr
	}
	switch {
	case !t.eof: // read partly: nothing to keep, nothing to say
	case t.werr != nil:
		t.c.storeFailed(t.want, t.werr)
	case hex.EncodeToString(t.h.Sum(nil)) != t.want.Hex:
		// The registry's answer did not match; the layer's own reader reports that.
	default:
		rerr := os.Rename(t.tmp.Name(), t.final)
		if rerr == nil {
			t.c.mu.Lock()
			t.c.verified[t.want] = true
			t.c.mu.Unlock()
			return err
		}
		t.c.storeFailed(t.want, rerr)
	}
	os.Remove(t.tmp.Name())
	return err
}
