package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// BaseCache keeps the compressed layers of base images in a local directory (--cache-dir), by
// digest, so a second build with the same directory reads them from disk instead of the
// registry. The manifest and config are still fetched from the registry: resolving a tag to a
// digest must see the registry's current answer.
type BaseCache struct {
	dir string
}

// NewBaseCache returns a cache in dir (created when the first layer is stored).
func NewBaseCache(dir string) *BaseCache { return &BaseCache{dir: dir} }

// Image returns img with layers that read from the cache when their blob is there, and store
// their blob there (verified against its digest) the first time they are read completely.
func (c *BaseCache) Image(img v1.Image) v1.Image { return &cachedImage{Image: img, c: c} }

// Has reports whether the blob with digest d is in the cache.
func (c *BaseCache) Has(d v1.Hash) bool {
	_, err := os.Stat(c.path(d))
	return err == nil
}

func (c *BaseCache) path(d v1.Hash) string { return filepath.Join(c.dir, "blobs", d.Algorithm, d.Hex) }

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

// Path is the cached blob's file when it is in the cache ("" otherwise), so the builder reads
// it in place instead of copying it first as it does with downloads.
func (l *cachedLayer) Path() string {
	d, err := l.Layer.Digest()
	if err != nil {
		return ""
	}
	if fi, err := os.Stat(l.c.path(d)); err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	return l.c.path(d)
}

func (l *cachedLayer) Compressed() (io.ReadCloser, error) {
	d, err := l.Layer.Digest()
	if err != nil {
		return nil, err
	}
	if f, err := os.Open(l.c.path(d)); err == nil {
		return f, nil
	}
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	if d.Algorithm != "sha256" || os.MkdirAll(filepath.Dir(l.c.path(d)), 0o755) != nil {
		return rc, nil // not cacheable here; still readable
	}
	tmp, err := os.CreateTemp(filepath.Dir(l.c.path(d)), d.Hex+".*.part")
	if err != nil {
		return rc, nil
	}
	return &teeToCache{rc: rc, tmp: tmp, h: sha256.New(), want: d, final: l.c.path(d)}, nil
}

// teeToCache copies what is read into a temporary file and keeps it only when the whole blob
// was read and its digest matches: a partial or corrupt download never enters the cache.
type teeToCache struct {
	rc    io.ReadCloser
	tmp   *os.File
	h     hash.Hash
	want  v1.Hash
	final string
	eof   bool
	bad   bool
}

func (t *teeToCache) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	if n > 0 && !t.bad {
		t.h.Write(p[:n])
		if _, werr := t.tmp.Write(p[:n]); werr != nil {
			t.bad = true
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
	if t.eof && !t.bad && cerr == nil && hex.EncodeToString(t.h.Sum(nil)) == t.want.Hex {
		if os.Rename(t.tmp.Name(), t.final) == nil {
			return err
		}
	}
	os.Remove(t.tmp.Name())
	return err
}
