package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/kilnbuild/kiln/internal/atomicfile"
)

// Resolution records that a reference resolved to an image manifest for a platform, and when
// the registry said so.
type Resolution struct {
	Ref      string    `json:"ref"`      // the reference in full (name.Reference.Name())
	Platform string    `json:"platform"` // os/arch[/variant] it was resolved for
	Digest   v1.Hash   `json:"digest"`   // the image manifest's digest
	Time     time.Time `json:"resolved"` // when the registry answered
}

// StoreImage keeps img's manifest and config in the cache, each checked against its digest
// and written atomically, and records that ref resolved to img for platform (os/arch[/variant])
// now. Layers are stored as they are read through Image or Refresh; HasImage says whether all
// of them are there.
func (c *BaseCache) StoreImage(ref name.Reference, platform string, img v1.Image) error {
	d, err := img.Digest()
	if err != nil {
		return fmt.Errorf("caching %s: %w", ref, err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		return fmt.Errorf("caching the manifest of %s: %w", ref, err)
	}
	if err := c.writeMeta(d, raw, "base image manifest"); err != nil {
		return fmt.Errorf("caching the manifest of %s: %w", ref, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return fmt.Errorf("caching %s: %w", ref, err)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return fmt.Errorf("caching the config of %s: %w", ref, err)
	}
	if err := c.writeMeta(m.Config.Digest, cfg, "base image config"); err != nil {
		return fmt.Errorf("caching the config of %s: %w", ref, err)
	}
	res := Resolution{Ref: ref.Name(), Platform: platform, Digest: d, Time: time.Now().UTC()}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := writeBaseFile(c.refPath(ref, platform), b); err != nil {
		return fmt.Errorf("recording %s -> %s: %w", ref, d, err)
	}
	return nil
}

// PlatformKey is p as os/arch[/variant], the form resolutions are recorded and looked up under
// (StoreImage, Resolved).
func PlatformKey(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// Resolved returns what ref last resolved to for platform, as StoreImage recorded it.
func (c *BaseCache) Resolved(ref name.Reference, platform string) (Resolution, bool) {
	b, err := os.ReadFile(c.refPath(ref, platform))
	if err != nil {
		return Resolution{}, false
	}
	var res Resolution
	if err := json.Unmarshal(b, &res); err != nil || res.Ref != ref.Name() || res.Platform != platform {
		return Resolution{}, false // damaged, or another reference's: not this one's record
	}
	return res, true
}

// HasImage reports whether the image with manifest digest d is in the cache in full: its
// manifest, config and every layer, each matching its digest (damaged ones are removed).
func (c *BaseCache) HasImage(d v1.Hash) bool {
	img, err := c.loadManifest(d)
	if err != nil {
		return false
	}
	for _, l := range img.manifest.Layers {
		if !c.usable(l.Digest) {
			return false
		}
	}
	return true
}

// LoadImage returns the image whose manifest has digest d from the cache alone: its manifest
// and config must be there (checked against their digests); a layer missing from the cache is
// an error naming it when the layer is read. Wrap the result with Image to read layers in place.
func (c *BaseCache) LoadImage(d v1.Hash) (v1.Image, error) {
	img, err := c.loadManifest(d)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(img)
}

// loadManifest reads and checks manifest d and its config.
func (c *BaseCache) loadManifest(d v1.Hash) (*storedImage, error) {
	if !c.usableAt(d, c.metaPath(d), "base image manifest") {
		return nil, fmt.Errorf("image %s is not in the base image cache %s", d, c.dir)
	}
	raw, err := os.ReadFile(c.metaPath(d))
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("cached manifest %s: %w", c.metaPath(d), err)
	}
	if m.Config.Digest.Hex == "" || !m.MediaType.IsImage() && m.MediaType != "" {
		return nil, fmt.Errorf("cached manifest %s is a %s, not an image manifest", c.metaPath(d), m.MediaType)
	}
	if !c.usableAt(m.Config.Digest, c.metaPath(m.Config.Digest), "base image config") {
		return nil, fmt.Errorf("the config %s of image %s is not in the base image cache %s", m.Config.Digest, d, c.dir)
	}
	cfg, err := os.ReadFile(c.metaPath(m.Config.Digest))
	if err != nil {
		return nil, err
	}
	return &storedImage{c: c, digest: d, raw: raw, manifest: m, config: cfg}, nil
}

// writeMeta stores manifest or config data (what) as d after checking that d is its digest.
// One already there and intact is left alone.
func (c *BaseCache) writeMeta(d v1.Hash, data []byte, what string) error {
	sum := sha256.Sum256(data)
	if d.Algorithm != "sha256" || hex.EncodeToString(sum[:]) != d.Hex {
		return fmt.Errorf("content does not match its digest %s", d)
	}
	p := c.metaPath(d)
	if c.usableAt(d, p, what) {
		return nil
	}
	if err := writeBaseFile(p, data); err != nil {
		return err
	}
	c.mu.Lock()
	c.verified[p] = true
	c.mu.Unlock()
	return nil
}

// refPath is the record of ref for platform: one file per pair, named by their hash, so no
// character of a reference needs escaping.
func (c *BaseCache) refPath(ref name.Reference, platform string) string {
	sum := sha256.Sum256([]byte(ref.Name() + "\x00" + platform))
	return filepath.Join(c.dir, "refs", hex.EncodeToString(sum[:])+".json")
}

// writeBaseFile writes data to a temporary file next to p (named *.part, unsynced, mode 0600)
// and renames it into place: readers see the old file or the new one, never a torn one.
func writeBaseFile(p string, data []byte) error {
	o := atomicfile.Options{Pattern: filepath.Base(p) + ".*.part", NoSync: true}
	return atomicfile.WriteWith(p, o, func(w io.Writer) error { _, err := w.Write(data); return err })
}

// storedImage is an image read from the cache (partial.CompressedImageCore).
type storedImage struct {
	c        *BaseCache
	digest   v1.Hash
	raw      []byte
	manifest *v1.Manifest
	config   []byte
}

func (s *storedImage) RawConfigFile() ([]byte, error) { return s.config, nil }
func (s *storedImage) RawManifest() ([]byte, error)   { return s.raw, nil }

func (s *storedImage) MediaType() (types.MediaType, error) {
	if s.manifest.MediaType == "" {
		return types.OCIManifestSchema1, nil
	}
	return s.manifest.MediaType, nil
}

func (s *storedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range s.manifest.Layers {
		if l.Digest == h {
			return &storedLayer{img: s, desc: l}, nil
		}
	}
	if h == s.manifest.Config.Digest {
		return &storedLayer{img: s, desc: s.manifest.Config}, nil
	}
	return nil, fmt.Errorf("image %s has no blob %s", s.digest, h)
}

// storedLayer is one layer of a storedImage.
type storedLayer struct {
	img  *storedImage
	desc v1.Descriptor
}

func (l *storedLayer) Digest() (v1.Hash, error) { return l.desc.Digest, nil }

// DiffID is what the image's config records for the layer, so that it is known without
// reading the blob (which the cache may not hold: see BaseCache.OpenForm).
func (l *storedLayer) DiffID() (v1.Hash, error) {
	cfg, err := v1.ParseConfigFile(bytes.NewReader(l.img.config))
	if err != nil {
		return v1.Hash{}, fmt.Errorf("cached config of image %s: %w", l.img.digest, err)
	}
	for i, d := range l.img.manifest.Layers {
		if d.Digest == l.desc.Digest && i < len(cfg.RootFS.DiffIDs) {
			return cfg.RootFS.DiffIDs[i], nil
		}
	}
	return v1.Hash{}, fmt.Errorf("the config of image %s records no diffID for layer %s", l.img.digest, l.desc.Digest)
}
func (l *storedLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *storedLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }

// errLayerNotCached is why a layer of an image read from the cache alone cannot be read.
var errLayerNotCached = errors.New("not in the base image cache, and the registry was not asked")

func (l *storedLayer) Compressed() (io.ReadCloser, error) {
	c := l.img.c
	if !c.usable(l.desc.Digest) {
		return nil, fmt.Errorf("layer %s of image %s: %w (%s)", l.desc.Digest, l.img.digest, errLayerNotCached, c.dir)
	}
	return os.Open(c.path(l.desc.Digest))
}
