package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ChainStore looks entries up in a local DirStore first and then in a remote store (a cache
// repository), and writes them to both. An entry found only remotely is copied into the local
// store as its layer is read (Lookup reads it once to verify it), so the next build hits locally.
type ChainStore struct {
	local          *DirStore
	remote         Store
	remoteReadOnly bool
	ttl            time.Duration
}

// ChainOption configures NewChainStore.
type ChainOption func(*ChainStore)

// RemoteReadOnly makes Put write only the local store (--no-push-cache, or a cache repository
// that refuses pushes).
func RemoteReadOnly(on bool) ChainOption { return func(c *ChainStore) { c.remoteReadOnly = on } }

// ChainTTL makes Get ask the remote store when the local entry is older than ttl (Lookup's
// ttl): another builder may have written a newer one there. Without a newer one, the local
// entry is returned (and Lookup calls it expired).
func ChainTTL(ttl time.Duration) ChainOption { return func(c *ChainStore) { c.ttl = ttl } }

// NewChainStore returns a store reading local, then remote; remote may be nil.
func NewChainStore(local *DirStore, remote Store, opts ...ChainOption) *ChainStore {
	c := &ChainStore{local: local, remote: remote}
	for _, o := range opts {
		o(c)
	}
	return c
}

// String names both stores.
func (c *ChainStore) String() string {
	if c.remote == nil {
		return c.local.String()
	}
	return c.local.String() + ", then " + c.remote.String()
}

// Get returns the local entry, or else the remote one (also when the local one is past the
// ChainTTL and the remote's is not). When the local entry cannot be read and the remote has
// none, the local error is returned, so that Lookup warns about it.
func (c *ChainStore) Get(ctx context.Context, key Key) (v1.Layer, Entry, error) {
	ll, le, lerr := c.local.Get(ctx, key)
	expired := lerr == nil && c.ttl > 0 && time.Since(le.Created) > c.ttl
	if lerr == nil && !expired || c.remote == nil {
		return ll, le, lerr
	}
	l, e, err := c.remote.Get(ctx, key)
	switch {
	case expired && (err != nil || time.Since(e.Created) > c.ttl):
		return ll, le, nil // the remote has nothing newer: the local entry, which Lookup finds expired
	case errors.Is(err, ErrNotFound) && !errors.Is(lerr, ErrNotFound):
		return nil, Entry{}, lerr
	case err != nil:
		return nil, Entry{}, err
	case e.Key != key:
		return l, e, nil // not storable under key (an entry the remote misnames)
	case l == nil:
		_ = c.local.Put(ctx, nil, e) // an empty entry: nothing to download
		return nil, e, nil
	}
	return &fillingLayer{Layer: l, store: c.local, entry: e}, e, nil
}

// Last returns the local store's entry for the lineage, or else the remote's.
func (c *ChainStore) Last(ctx context.Context, lineage string) (Entry, error) {
	e, err := c.local.Last(ctx, lineage)
	if err == nil || c.remote == nil {
		return e, err
	}
	return c.remote.Last(ctx, lineage)
}

// Put writes the local store, then the remote one unless it is read-only. A local failure (a
// full volume) does not keep the remote from being written; the errors are joined.
func (c *ChainStore) Put(ctx context.Context, layer v1.Layer, e Entry) error {
	lerr := c.local.Put(ctx, layer, e)
	if c.remote == nil || c.remoteReadOnly {
		return lerr
	}
	return errors.Join(lerr, c.remote.Put(ctx, layer, e))
}

// fillingLayer is a remote entry's layer that stores its blob, and then the entry, in the
// local store the first time it is read completely and matches its digest; later reads, and
// Path, use the local file.
type fillingLayer struct {
	v1.Layer
	store *DirStore
	entry Entry

	mu   sync.Mutex
	path string // the local blob once stored
}

// Path is the local blob once the layer was read through, "" before.
func (f *fillingLayer) Path() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.path
}

// Compressed reads the local copy once there is one, or else the remote blob through a tee
// into a temporary file of the local store.
func (f *fillingLayer) Compressed() (io.ReadCloser, error) {
	if p := f.Path(); p != "" {
		if r, err := os.Open(p); err == nil {
			return r, nil
		}
	}
	rc, err := f.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	d, err := describeLayer(f.Layer)
	if err != nil {
		return rc, nil // not storable here; still readable
	}
	final := f.store.blobPath(d.Digest)
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return rc, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(final), tmpPrefix+d.Digest.Hex+"-*")
	if err != nil {
		return rc, nil
	}
	return &fillTee{rc: rc, tmp: tmp, h: sha256.New(), d: d, final: final, f: f}, nil
}

// fillTee copies what is read into a temporary file and, when the whole blob was read and
// matches its digest, renames it into place and writes the entry.
type fillTee struct {
	rc    io.ReadCloser
	tmp   *os.File
	h     hash.Hash
	d     dirLayer
	final string
	f     *fillingLayer
	n     int64
	eof   bool
	werr  error
}

func (t *fillTee) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	if n > 0 && t.werr == nil {
		t.h.Write(p[:n])
		t.n += int64(n)
		_, t.werr = t.tmp.Write(p[:n])
	}
	if errors.Is(err, io.EOF) {
		t.eof = true
	}
	return n, err
}

func (t *fillTee) Close() error {
	err := t.rc.Close()
	if t.werr == nil {
		t.werr = t.tmp.Sync()
	}
	if cerr := t.tmp.Close(); t.werr == nil {
		t.werr = cerr
	}
	ok := t.eof && t.werr == nil && hex.EncodeToString(t.h.Sum(nil)) == t.d.Digest.Hex && t.n == t.d.Size
	if ok {
		ok = os.Chmod(t.tmp.Name(), 0o644) == nil && os.Rename(t.tmp.Name(), t.final) == nil
	}
	if !ok {
		os.Remove(t.tmp.Name())
		return err
	}
	rec := dirRecord{Key: t.f.entry.Key, Parent: t.f.entry.Parent, CreatedBy: t.f.entry.CreatedBy,
		Created: t.f.entry.Created.UTC(), Lineage: t.f.entry.Lineage, Inputs: storedInputs(t.f.entry.Inputs), Layer: &t.d}
	if werr := t.f.store.writeRecord(t.f.store.entryPath(rec.Key), rec); werr != nil {
		return err // the blob stays for the next Put; nothing names it yet
	}
	t.f.mu.Lock()
	t.f.path = t.final
	t.f.mu.Unlock()
	return err
}
