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

// BaseCache keeps base images in a local directory (--cache-dir): compressed layers by digest
// under <dir>/blobs, manifests and configs by digest under <dir>/manifests, and which image each
// reference resolved to, and when, under <dir>/refs (see StoreImage). A second build with the same directory reads the
// layers from disk instead of the registry. A tag is still resolved by the registry when it
// can be reached (the registry's current answer wins); the recorded resolution serves builds
// that cannot reach it, and a digest reference needs no registry at all (see LoadImage).
//
// A blob enters the cache only once it was read completely and matched its digest (written to
// a temporary file, renamed into place), so a full disk or an interrupted download never leaves
// a torn blob. A cached blob is checked against its digest again before its first use in a
// process: one that does not match (damaged on disk) is removed and read from the registry.
type BaseCache struct {
	dir  string
	warn func(format string, args ...any)

	mu       sync.Mutex
	verified map[string]bool  // files checked against their digest by this process
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
	c := &BaseCache{dir: dir, warn: func(string, ...any) {}, verified: map[string]bool{}, failed: map[v1.Hash]bool{}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Image returns img with layers that read from the cache when their blob is there, and store
// their blob there (verified against its digest) the first time they are read completely.
func (c *BaseCache) Image(img v1.Image) v1.Image { return &cachedImage{Image: img, c: c} }

// Refresh is Image for a forced download (the warmer's --force): every layer is read from img
// again, never from the cache, and replaces the cached copy once read completely and verified.
func (c *BaseCache) Refresh(img v1.Image) v1.Image {
	return &cachedImage{Image: img, c: c, refresh: true}
}

// Has reports whether the blob with digest d is in the cache.
func (c *BaseCache) Has(d v1.Hash) bool {
	_, err := os.Stat(c.path(d))
	return err == nil
}

// Intact reports whether the blob with digest d is in the cache and matches its digest (the
// file is hashed once per process; a damaged one is removed, with a warning).
func (c *BaseCache) Intact(d v1.Hash) bool { return c.usable(d) }

func (c *BaseCache) path(d v1.Hash) string { return filepath.Join(c.dir, "blobs", d.Algorithm, d.Hex) }

// metaPath is where manifest or config d is kept: apart from the layers, so <dir>/blobs holds
// layers only.
func (c *BaseCache) metaPath(d v1.Hash) string {
	return filepath.Join(c.dir, "manifests", d.Algorithm, d.Hex)
}

// usable reports whether layer blob d is in the cache and matches its digest. The first call
// per blob hashes the file; a damaged one is removed, with a warning.
func (c *BaseCache) usable(d v1.Hash) bool { return c.usableAt(d, c.path(d), "base layer") }

// usableAt is usable for the file p holding d, which warnings call what ("base layer", "base
// image manifest").
func (c *BaseCache) usableAt(d v1.Hash, p, what string) bool {
	if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.verified[p] {
		return true
	}
	got, err := fileDigest(p, d.Algorithm)
	if err == nil && got == d {
		c.verified[p] = true
		return true
	}
	if err == nil {
		err = fmt.Errorf("its content has digest %s", got)
	}
	if rerr := os.Remove(p); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		c.warn("cached %s %s is damaged (%v) and cannot be removed: %v; reading it from the registry", what, p, err, rerr)
		return false
	}
	c.warn("cached %s %s is damaged (%v): removed; reading it from the registry", what, p, err)
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
	c       *BaseCache
	refresh bool // read every layer from Image, never from the cache
}

func (i *cachedImage) Layers() ([]v1.Layer, error) {
	ls, err := i.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for n, l := range ls {
		out[n] = &cachedLayer{Layer: l, c: i.c, refresh: i.refresh}
	}
	return out, nil
}

func (i *cachedImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := i.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return &cachedLayer{Layer: l, c: i.c, refresh: i.refresh}, nil
}

// cachedLayer serves Compressed from the cache; Uncompressed is the wrapped layer's.
type cachedLayer struct {
	v1.Layer
	c       *BaseCache
	refresh bool
}

// Path is the cached blob's file when it is in the cache and intact ("" otherwise), so the
// builder reads it in place instead of copying it first as it does with downloads.
func (l *cachedLayer) Path() string {
	d, err := l.Layer.Digest()
	if err != nil || l.refresh || !l.c.usable(d) {
		return ""
	}
	return l.c.path(d)
}

func (l *cachedLayer) Compressed() (io.ReadCloser, error) {
	d, err := l.Layer.Digest()
	if err != nil {
		return nil, err
	}
	if !l.refresh && l.c.usable(d) {
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
			t.c.verified[t.final] = true
			t.c.mu.Unlock()
			return err
		}
		t.c.storeFailed(t.want, rerr)
	}
	os.Remove(t.tmp.Name())
	return err
}
