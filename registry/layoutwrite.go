package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/kilnbuild/kiln/internal/atomicfile"
	"golang.org/x/sys/unix"
)

// ErrDamagedLayoutIndex is returned (wrapped) by AddToOCILayout when the layout's index.json
// cannot be read: the layout is left as it is rather than its images being forgotten.
var ErrDamagedLayoutIndex = errors.New("index.json is damaged")

// AddToOCILayout writes img into the OCI image layout at dir (created if needed) and names it
// in index.json by each of refNames (org.opencontainers.image.ref.name), replacing the images
// that carried those names; without a name it is appended. The image's media types are kept.
//
// Every file is written to a temporary file in its directory and renamed into place once it is
// complete: blobs first, each checked against its digest, then index.json, under an exclusive
// lock on the layout (other processes writing it wait). A failure, a full disk or a kill at any
// moment therefore leaves the layout as it was, plus at most complete blobs that nothing
// names yet; never a torn blob or index.
func AddToOCILayout(dir string, img v1.Image, refNames ...string) error {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return err
	}
	unlock, err := lockLayout(dir)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); errors.Is(err, fs.ErrNotExist) {
		if err := atomicfile.Write(filepath.Join(dir, "oci-layout"), 0o644, func(w io.Writer) error {
			_, err := io.WriteString(w, `{"imageLayoutVersion":"1.0.0"}`)
			return err
		}); err != nil {
			return err
		}
	}
	desc, err := writeImageBlobs(dir, img)
	if err != nil {
		return err
	}
	return updateLayoutIndex(dir, desc, refNames)
}

// lockLayout takes an exclusive lock on the layout at dir for one writer at a time.
func lockLayout(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".kiln-index.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// writeImageBlobs writes img's layers, config and manifest into the layout's blobs and returns
// the manifest's descriptor.
func writeImageBlobs(dir string, img v1.Image) (v1.Descriptor, error) {
	layers, err := img.Layers()
	if err != nil {
		return v1.Descriptor{}, err
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return v1.Descriptor{}, err
		}
		size, err := l.Size()
		if err != nil {
			return v1.Descriptor{}, err
		}
		if err := writeBlob(dir, d, size, l.Compressed); err != nil {
			return v1.Descriptor{}, fmt.Errorf("layer %s: %w", d, err)
		}
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return v1.Descriptor{}, err
	}
	cfg, err := img.ConfigName()
	if err != nil {
		return v1.Descriptor{}, err
	}
	if err := writeBlob(dir, cfg, int64(len(raw)), bytesBlob(raw)); err != nil {
		return v1.Descriptor{}, fmt.Errorf("config %s: %w", cfg, err)
	}
	manifest, err := img.RawManifest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	if err := writeBlob(dir, digest, int64(len(manifest)), bytesBlob(manifest)); err != nil {
		return v1.Descriptor{}, fmt.Errorf("manifest %s: %w", digest, err)
	}
	return v1.Descriptor{MediaType: mt, Size: int64(len(manifest)), Digest: digest}, nil
}

func bytesBlob(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

// writeBlob stores the blob with digest d and size bytes at blobs/ALG/HEX unless a file of that
// size is there already: through a temporary file, renamed once its content matched d.
func writeBlob(dir string, d v1.Hash, size int64, open func() (io.ReadCloser, error)) error {
	if d.Algorithm != "sha256" {
		return fmt.Errorf("unsupported digest algorithm %q", d.Algorithm)
	}
	path := filepath.Join(dir, "blobs", d.Algorithm, d.Hex)
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Size() == size {
		return nil
	}
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		n, got, err := atomicfile.CopySHA256(w, rc)
		if err != nil {
			return err
		}
		if got != d.Hex || n != size {
			return fmt.Errorf("content read (%d bytes, sha256:%s) does not match the digest (%d bytes)", n, got, size)
		}
		return nil
	})
}

// updateLayoutIndex names desc in index.json by each of refNames (replacing what had those
// names), or appends it unnamed, and writes the index atomically.
func updateLayoutIndex(dir string, desc v1.Descriptor, refNames []string) error {
	path := filepath.Join(dir, "index.json")
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &index); err != nil {
			return fmt.Errorf("%s: %w (%v)", path, ErrDamagedLayoutIndex, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if len(refNames) == 0 {
		index.Manifests = append(index.Manifests, desc)
	}
	for _, ref := range refNames {
		index.Manifests = slices.DeleteFunc(index.Manifests, func(m v1.Descriptor) bool {
			return m.Annotations[refNameAnnotation] == ref
		})
		named := desc
		named.Annotations = map[string]string{refNameAnnotation: ref}
		index.Manifests = append(index.Manifests, named)
	}
	out, err := json.MarshalIndent(index, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		_, err := w.Write(out)
		return err
	})
}
