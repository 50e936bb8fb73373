package registry

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
)

// refNameAnnotation is the OCI annotation tools such as skopeo
// ("oci:DIR:NAME") and umoci use to find an image in a layout.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// WriteOCILayout adds img to the OCI image layout at path, creating the
// layout if needed. The image is stored with OCI media types (OCIMediaTypes),
// so OCI tools read it; its manifest digest then differs from a Docker-typed
// push of the same image. With refName, the image is annotated with it and replaces
// any image already carrying that name; without, it is appended. Blobs are
// written before index.json, so a failure never leaves the index pointing at
// missing blobs.
func WriteOCILayout(path string, img v1.Image, refName string) error {
	img, err := OCIMediaTypes(img)
	if err != nil {
		return fmt.Errorf("write OCI layout %s: %w", path, err)
	}
	p, err := openLayout(path)
	if err != nil {
		return fmt.Errorf("write OCI layout %s: %w", path, err)
	}
	if refName == "" {
		err = p.AppendImage(img)
	} else {
		ann := map[string]string{refNameAnnotation: refName}
		err = p.ReplaceImage(img, match.Annotation(refNameAnnotation, refName), layout.WithAnnotations(ann))
	}
	if err != nil {
		return fmt.Errorf("write OCI layout %s: %w", path, err)
	}
	return nil
}

// openLayout opens the layout at path, or creates an empty one when there is
// no index.json yet (an existing directory without one becomes a layout).
func openLayout(path string) (layout.Path, error) {
	_, err := os.Stat(filepath.Join(path, "index.json"))
	switch {
	case err == nil:
		return layout.FromPath(path)
	case !errors.Is(err, fs.ErrNotExist):
		return "", err
	}
	return layout.Write(path, empty.Index)
}
