package cache

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/kilnbuild/kiln/registry"
)

// RegistryStore keeps entries as images in one registry repository, tagged with their key
// (and with their lineage, so the last entry of a position can be found).
type RegistryStore struct {
	repo string
	opts []registry.Option
}

// NewRegistryStore returns a store in repository repo ("registry.example.com/team/app/cache"),
// reached with opts (credentials, TLS, insecure registries, retries).
func NewRegistryStore(repo string, opts ...registry.Option) (*RegistryStore, error) {
	if _, err := name.NewRepository(repo); err != nil {
		return nil, fmt.Errorf("cache repository %q: %w", repo, err)
	}
	return &RegistryStore{repo: repo, opts: opts}, nil
}

// String is the repository.
func (s *RegistryStore) String() string { return s.repo }

// Get pulls the entry tagged key; its layer is downloaded when read.
func (s *RegistryStore) Get(ctx context.Context, key Key) (v1.Layer, Entry, error) {
	img, err := s.pull(ctx, string(key))
	if err != nil {
		return nil, Entry{}, err
	}
	l, e, err := readEntry(img)
	e.Source = SourceRegistry
	return l, e, err
}

// Last pulls the entry tagged with the lineage.
func (s *RegistryStore) Last(ctx context.Context, lineage string) (Entry, error) {
	img, err := s.pull(ctx, lineage)
	if err != nil {
		return Entry{}, err
	}
	_, e, err := readEntry(img)
	return e, err
}

func (s *RegistryStore) pull(ctx context.Context, tag string) (v1.Image, error) {
	img, err := registry.Pull(ctx, s.repo+":"+tag, s.opts...)
	if err != nil {
		if notFound(err) {
			return nil, fmt.Errorf("%s:%s: %w", s.repo, tag, ErrNotFound)
		}
		return nil, err
	}
	return img, nil
}

// Put pushes the entry's image tagged with its key and its lineage.
func (s *RegistryStore) Put(ctx context.Context, layer v1.Layer, e Entry) error {
	img, err := entryImage(layer, e)
	if err != nil {
		return err
	}
	tags := []string{s.repo + ":" + string(e.Key)}
	if e.Lineage != "" {
		tags = append(tags, s.repo+":"+e.Lineage)
	}
	// Tags replaced without asking what they point at: an old entry the registry cannot read
	// any more must not keep the instruction from being cached again.
	_, err = registry.Push(ctx, img, tags, append(append([]registry.Option{}, s.opts...), registry.WithTagsReplaced())...)
	return err
}

// notFound recognises a registry's "no such manifest or repository" answer.
func notFound(err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) {
		return false
	}
	if te.StatusCode == http.StatusNotFound {
		return true
	}
	for _, d := range te.Errors {
		if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
			return true
		}
	}
	return false
}
