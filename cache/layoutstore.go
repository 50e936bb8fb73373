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
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/kilnbuild/kiln/registry"
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
	img, digest, err := s.find(string(key))
	if err != nil {
		return nil, Entry{}, err
	}
	l, e, err := readEntry(img)
	if err != nil {
		return nil, Entry{}, fmt.Errorf("%s: manifest %s of %s: %w", s, digest, key.Short(), err)
	}
	e.Source = SourceLayout
	return l, e, nil
}

// Last returns the entry annotated with the lineage.
func (s *LayoutStore) Last(_ context.Context, lineage string) (Entry, error) {
	img, digest, err := s.find(lineage)
	if err != nil {
		return Entry{}, err
	}
	_, e, err := readEntry(img)
	if err != nil {
		return Entry{}, fmt.Errorf("%s: manifest %s of %s: %w", s, digest, lineage, err)
	}
	return e, nil
}

func (s *LayoutStore) find(ref string) (v1.Image, v1.Hash, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx, err := layout.ImageIndexFromPath(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, v1.Hash{}, fmt.Errorf("%s: %s: %w", s, ref, ErrNotFound)
	}
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("%s: %w", s, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("%s: index.json: %w", s, err)
	}
	for i := len(m.Manifests) - 1; i >= 0; i-- {
		if d := m.Manifests[i]; d.Annotations[refName] == ref {
			img, err := idx.Image(d.Digest)
			if err != nil {
				return nil, v1.Hash{}, fmt.Errorf("%s: manifest %s: %w", s, d.Digest, err)
			}
			return img, d.Digest, nil
		}
	}
	return nil, v1.Hash{}, fmt.Errorf("%s: %s: %w", s, ref, ErrNotFound)
}

// Put writes the entry's blobs, then names it by key and lineage in index.json. Each file is
// written whole and renamed into place (registry.AddToOCILayout), so a full disk or a kill
// leaves no torn entry. An index.json that cannot be read (damaged by another tool or an older
// writer) is kept aside as index.json.damaged and the cache starts a new index.
func (s *LayoutStore) Put(_ context.Context, layer v1.Layer, e Entry) error {
	img, err := entryImage(layer, e)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var refs []string
	for _, ref := range []string{string(e.Key), e.Lineage} {
		if ref != "" {
			refs = append(refs, ref)
		}
	}
	err = registry.AddToOCILayout(s.dir, img, refs...)
	if errors.Is(err, registry.ErrDamagedLayoutIndex) {
		index := filepath.Join(s.dir, "index.json")
		if rerr := os.Rename(index, index+".damaged"); rerr != nil {
			return fmt.Errorf("%s: writing %s: %w", s, e.Key.Short(), err)
		}
		err = registry.AddToOCILayout(s.dir, img, refs...)
	}
	if err != nil {
		return fmt.Errorf("%s: writing %s: %w", s, e.Key.Short(), err)
	}
	return nil
}
