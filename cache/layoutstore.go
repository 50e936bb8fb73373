package cache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
)

// refName is the OCI annotation an entry is found by (its key, or its lineage).
const refName = "org.opencontainers.image.ref.name"

// LayoutStore keeps entries in an OCI image layout directory, each image annotated with its
// key and its lineage as org.opencontainers.image.ref.name. One process at a time may write it.
type LayoutStore struct {
	dir string
	mu  sync.Mutex // index.json is rewritten by every Put
}

// NewLayoutStore returns a store in the OCI layout at dir, created on the first Put.
func NewLayoutStore(dir string) *LayoutStore { return &LayoutStore{dir: dir} }

// String is "oci:" and the directory.
func (s *LayoutStore) String() string { return "oci:" + s.dir }

// Get returns the entry annotated with key.
func (s *LayoutStore) Get(_ context.Context, key Key) (v1.Layer, Entry, error) {
	img, err := s.find(string(key))
	if err != nil {
		return nil, Entry{}, err
	}
	return readEntry(img)
}

// Last returns the entry annotated with the lineage.
func (s *LayoutStore) Last(_ context.Context, lineage string) (Entry, error) {
	img, err := s.find(lineage)
	if err != nil {
		return Entry{}, err
	}
	_, e, err := readEntry(img)
	return e, err
}

func (s *LayoutStore) find(ref string) (v1.Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx, err := layout.ImageIndexFromPath(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %s: %w", s, ref, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	for i := len(m.Manifests) - 1; i >= 0; i-- {
		if d := m.Manifests[i]; d.Annotations[refName] == ref {
			return idx.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("%s: %s: %w", s, ref, ErrNotFound)
}

// Put writes the entry's blobs, then names it by key and lineage in index.json.
func (s *LayoutStore) Put(_ context.Context, layer v1.Layer, e Entry) error {
	img, err := entryImage(layer, e)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.open()
	if err != nil {
		return fmt.Errorf("%s: %w", s, err)
	}
	for _, ref := range []string{string(e.Key), e.Lineage} {
		if ref == "" {
			continue
		}
		if err := p.ReplaceImage(img, match.Annotation(refName, ref),
			layout.WithAnnotations(map[string]string{refName: ref})); err != nil {
			return fmt.Errorf("%s: writing %s: %w", s, ref, err)
		}
	}
	return nil
}

func (s *LayoutStore) open() (layout.Path, error) {
	if _, err := os.Stat(filepath.Join(s.dir, "index.json")); err == nil {
		return layout.FromPath(s.dir)
	}
	return layout.Write(s.dir, empty.Index)
}
