package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ErrNotFound is returned (wrapped) by a Store that has no entry for a key or lineage.
var ErrNotFound = errors.New("no cache entry")

// Store keeps cached layers by key. Implementations must be safe for concurrent use.
type Store interface {
	// Get returns the entry for key and its layer (nil when the entry is Empty). The layer's
	// content may be fetched lazily, when read.
	Get(ctx context.Context, key Key) (v1.Layer, Entry, error)
	// Put stores layer (nil for an Empty entry) under e.Key, and under e.Lineage when set.
	Put(ctx context.Context, layer v1.Layer, e Entry) error
	// Last returns the entry most recently stored for a lineage, to explain a miss.
	Last(ctx context.Context, lineage string) (Entry, error)
	// String names the store in messages (a repository or a directory).
	String() string
}

// LineageOf names a Dockerfile position: the same stage and instruction index of the same
// Dockerfile across builds. It is a valid tag ("pos-" and 60 hex characters).
func LineageOf(dockerfile string, stage int, stageBase string, step int) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%q %d %q %d", dockerfile, stage, stageBase, step)))
	return "pos-" + hex.EncodeToString(sum[:])[:60]
}

// entryImage is the single-layer (or, for an Empty entry, layerless) image an entry is stored as.
func entryImage(layer v1.Layer, e Entry) (v1.Image, error) {
	if e.Key == "" {
		return nil, errors.New("cache entry without a key")
	}
	if (layer == nil) != e.Empty {
		return nil, fmt.Errorf("cache entry %s: Empty is %v but layer is %v", e.Key.Short(), e.Empty, layer)
	}
	mt := types.DockerManifestSchema2
	img := empty.Image
	if layer != nil {
		lmt, err := layer.MediaType()
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(string(lmt), "application/vnd.oci.") {
			mt = types.OCIManifestSchema1
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			return nil, err
		}
	}
	img = mutate.MediaType(img, mt)
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	entryCfg, err := e.configFile()
	if err != nil {
		return nil, err
	}
	entryCfg.RootFS = cf.RootFS
	return mutate.ConfigFile(img, entryCfg)
}

// readEntry returns the entry and layer stored as img.
func readEntry(img v1.Image) (v1.Layer, Entry, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, Entry{}, err
	}
	e, err := entryOf(cf)
	if err != nil {
		return nil, Entry{}, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, Entry{}, err
	}
	switch {
	case e.Empty && len(layers) == 0:
		return nil, e, nil
	case !e.Empty && len(layers) == 1:
		return layers[0], e, nil
	}
	return nil, Entry{}, fmt.Errorf("cache entry %s: %d layers (empty=%v); expected one, or none for an empty entry",
		e.Key.Short(), len(layers), e.Empty)
}
