package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/kilnbuild/kiln/internal/atomicfile"
)

// Where Get found an entry (Entry.Source).
const (
	SourceLocal    = "local"    // a DirStore: the --cache-dir volume
	SourceRegistry = "registry" // a RegistryStore: the cache repository
	SourceLayout   = "oci"      // a LayoutStore: an oci: cache repository
)

// DirStore keeps entries in a local directory (the layer cache of --cache-dir) as plain files,
// so that several processes (build pods sharing one volume) may read and write it at once
// without locks:
//
//	entries/<key>.json       the entry and its layer's descriptor; its mtime is its last use
//	lineages/<lineage>.json  the entry last written for a Dockerfile position (for Last)
//	blobs/sha256/<hex>       compressed layers, by digest, shared by entries
//
// Every file is written under a temporary name in its directory and renamed into place, so a
// reader sees a whole file or none; blobs are written before the entries that name them. A hit
// touches its entry file, which Prune uses to remove the least recently used entries first.
type DirStore struct {
	dir string
}

// NewDirStore returns a store in dir, created on the first Put.
func NewDirStore(dir string) *DirStore { return &DirStore{dir: dir} }

// String is the directory.
func (s *DirStore) String() string { return s.dir }

// Dir is the store's directory.
func (s *DirStore) Dir() string { return s.dir }

// tmpPrefix starts the names of files being written; listings skip them.
const tmpPrefix = ".tmp-"

// dirRecord is an entry file: the entry (inputs as stored) and its layer's descriptor.
type dirRecord struct {
	Key       Key       `json:"key"`
	Parent    Key       `json:"parent,omitempty"`
	CreatedBy string    `json:"createdBy,omitempty"`
	Created   time.Time `json:"created"`
	Empty     bool      `json:"empty,omitempty"`
	Lineage   string    `json:"lineage,omitempty"`
	Inputs    []Input   `json:"inputs,omitempty"`
	Layer     *dirLayer `json:"layer,omitempty"`
}

type dirLayer struct {
	Digest    v1.Hash         `json:"digest"`
	DiffID    v1.Hash         `json:"diffID"`
	Size      int64           `json:"size"`
	MediaType types.MediaType `json:"mediaType"`
}

func (r dirRecord) entry() Entry {
	return Entry{Key: r.Key, Parent: r.Parent, CreatedBy: r.CreatedBy, Created: r.Created, Empty: r.Empty,
		Lineage: r.Lineage, Inputs: r.Inputs, Source: SourceLocal}
}

// safeName reports whether a key or lineage can name a file: hex digits, letters and dashes.
func safeName(n string) bool {
	if n == "" || len(n) > 128 {
		return false
	}
	for _, c := range n {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '-') {
			return false
		}
	}
	return true
}

func (s *DirStore) entryPath(key Key) string {
	return filepath.Join(s.dir, "entries", string(key)+".json")
}

func (s *DirStore) lineagePath(lineage string) string {
	return filepath.Join(s.dir, "lineages", lineage+".json")
}

func (s *DirStore) blobPath(d v1.Hash) string {
	return filepath.Join(s.dir, "blobs", d.Algorithm, d.Hex)
}

// readRecord reads an entry or lineage file; a file that does not exist is ErrNotFound.
func (s *DirStore) readRecord(p, what string) (dirRecord, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return dirRecord{}, fmt.Errorf("%s: %s: %w", s, what, ErrNotFound)
	}
	if err != nil {
		return dirRecord{}, fmt.Errorf("%s: %w", s, err)
	}
	var r dirRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return dirRecord{}, fmt.Errorf("%s: %s: %w", s, p, err)
	}
	if r.Key == "" || r.Empty != (r.Layer == nil) {
		return dirRecord{}, fmt.Errorf("%s: %s: not a whole cache entry", s, p)
	}
	return r, nil
}

// Get returns the entry for key, its layer read from the blob file. An entry whose blob is
// gone (pruned by another process since) is not found. A hit marks the entry as used now.
func (s *DirStore) Get(_ context.Context, key Key) (v1.Layer, Entry, error) {
	if !safeName(string(key)) {
		return nil, Entry{}, fmt.Errorf("%s: %q: %w", s, key, ErrNotFound)
	}
	p := s.entryPath(key)
	r, err := s.readRecord(p, key.Short())
	if err != nil {
		return nil, Entry{}, err
	}
	var layer v1.Layer
	if r.Layer != nil {
		bp := s.blobPath(r.Layer.Digest)
		if _, err := os.Stat(bp); errors.Is(err, fs.ErrNotExist) {
			return nil, Entry{}, fmt.Errorf("%s: %s: its layer %s was pruned: %w", s, key.Short(), r.Layer.Digest, ErrNotFound)
		}
		if layer, err = newFileLayer(bp, *r.Layer); err != nil {
			return nil, Entry{}, err
		}
	}
	now := time.Now()
	_ = os.Chtimes(p, now, now) // the last use, for Prune; a read-only volume still hits
	return layer, r.entry(), nil
}

// Last returns the entry last written for the lineage.
func (s *DirStore) Last(_ context.Context, lineage string) (Entry, error) {
	if !safeName(lineage) {
		return Entry{}, fmt.Errorf("%s: %q: %w", s, lineage, ErrNotFound)
	}
	r, err := s.readRecord(s.lineagePath(lineage), lineage)
	if err != nil {
		return Entry{}, err
	}
	return r.entry(), nil
}

// Put writes the layer's blob (unless an intact copy is there), then the entry, then the
// lineage's pointer. Each is renamed into place whole.
func (s *DirStore) Put(ctx context.Context, layer v1.Layer, e Entry) error {
	if e.Key == "" || !safeName(string(e.Key)) || e.Lineage != "" && !safeName(e.Lineage) {
		return fmt.Errorf("%s: cache entry with a bad key %q or lineage %q", s, e.Key, e.Lineage)
	}
	if (layer == nil) != e.Empty {
		return fmt.Errorf("%s: cache entry %s: Empty is %v but layer is %v", s, e.Key.Short(), e.Empty, layer)
	}
	rec := dirRecord{Key: e.Key, Parent: e.Parent, CreatedBy: e.CreatedBy, Created: e.Created.UTC(), Empty: e.Empty,
		Lineage: e.Lineage, Inputs: storedInputs(e.Inputs)}
	if layer != nil {
		d, err := describeLayer(layer)
		if err != nil {
			return fmt.Errorf("%s: cache entry %s: %w", s, e.Key.Short(), err)
		}
		rec.Layer = &d
		if err := s.putBlob(ctx, layer, d); err != nil {
			return fmt.Errorf("%s: cache entry %s: %w", s, e.Key.Short(), err)
		}
	}
	if err := s.writeRecord(s.entryPath(e.Key), rec); err != nil {
		return err
	}
	if rec.Layer != nil {
		// A Prune that listed the entries just before this one was written may have taken the
		// blob as unused: write it again, so the entry never names a missing blob for long.
		if _, err := os.Stat(s.blobPath(rec.Layer.Digest)); errors.Is(err, fs.ErrNotExist) {
			if err := s.putBlob(ctx, layer, *rec.Layer); err != nil {
				return fmt.Errorf("%s: cache entry %s: %w", s, e.Key.Short(), err)
			}
		}
	}
	if e.Lineage != "" {
		return s.writeRecord(s.lineagePath(e.Lineage), rec)
	}
	return nil
}

func describeLayer(l v1.Layer) (dirLayer, error) {
	var d dirLayer
	var err error
	if d.Digest, err = l.Digest(); err != nil {
		return d, err
	}
	if d.Digest.Algorithm != "sha256" {
		return d, fmt.Errorf("layer %s: unsupported digest algorithm", d.Digest)
	}
	if d.DiffID, err = l.DiffID(); err != nil {
		return d, err
	}
	if d.Size, err = l.Size(); err != nil {
		return d, err
	}
	d.MediaType, err = l.MediaType()
	return d, err
}

// putBlob stores the layer's compressed blob unless an intact copy is there already (then it
// only marks it as used now, so a Prune running at the same time keeps it).
func (s *DirStore) putBlob(ctx context.Context, l v1.Layer, d dirLayer) error {
	p := s.blobPath(d.Digest)
	if fi, err := os.Stat(p); err == nil && fi.Size() == d.Size {
		if sum, err := hashFile(p); err == nil && sum == d.Digest.Hex {
			now := time.Now()
			_ = os.Chtimes(p, now, now)
			return nil
		}
	}
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("layer %s: %w", d.Digest, err)
	}
	defer rc.Close()
	return writeBlob(ctx, p, ctxReader{ctx: ctx, r: rc}, d.Digest, d.Size)
}

// writeBlob writes r to p through a temporary file, keeping it only when its digest and size
// match.
func writeBlob(_ context.Context, p string, r io.Reader, want v1.Hash, size int64) error {
	return writeAtomic(p, func(w io.Writer) error {
		n, got, err := atomicfile.CopySHA256(w, r)
		if err != nil {
			return fmt.Errorf("layer %s: %w", want, err)
		}
		if got != want.Hex {
			return fmt.Errorf("layer %s: its content (%d bytes) has digest sha256:%s", want, n, got)
		}
		if size > 0 && n != size {
			return fmt.Errorf("layer %s: %d bytes, want %d", want, n, size)
		}
		return nil
	})
}

func (s *DirStore) writeRecord(p string, r dirRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := writeAtomic(p, func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
		return fmt.Errorf("%s: %w", s, err)
	}
	return nil
}

// writeAtomic replaces p atomically with what fill writes (mode 0644, synced), through a
// temporary file named with tmpPrefix, which isTemp recognises. On any error the temporary file
// is removed and p is left as it was.
func writeAtomic(p string, fill func(io.Writer) error) error {
	o := atomicfile.Options{Pattern: tmpPrefix + filepath.Base(p) + "-*", Perm: 0o644}
	if err := atomicfile.WriteWith(p, o, fill); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

// fileLayer is a layer whose compressed blob is a file of the store; Path lets the builder
// read it in place.
type fileLayer struct {
	v1.Layer
	path string
}

// Path is the blob's file.
func (l *fileLayer) Path() string { return l.path }

func newFileLayer(p string, d dirLayer) (v1.Layer, error) {
	l, err := partial.CompressedToLayer(&blobFile{path: p, d: d})
	if err != nil {
		return nil, err
	}
	return &fileLayer{Layer: l, path: p}, nil
}

// blobFile is the compressed side of a fileLayer (partial adds Uncompressed).
type blobFile struct {
	path string
	d    dirLayer
}

func (b *blobFile) Digest() (v1.Hash, error)            { return b.d.Digest, nil }
func (b *blobFile) DiffID() (v1.Hash, error)            { return b.d.DiffID, nil }
func (b *blobFile) Size() (int64, error)                { return b.d.Size, nil }
func (b *blobFile) MediaType() (types.MediaType, error) { return b.d.MediaType, nil }
func (b *blobFile) Compressed() (io.ReadCloser, error)  { return os.Open(b.path) }

// isTemp reports whether a directory entry is a file being written.
func isTemp(name string) bool { return strings.HasPrefix(name, tmpPrefix) }
