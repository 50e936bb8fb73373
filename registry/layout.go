package registry

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// refNameAnnotation is the OCI annotation tools such as skopeo
// ("oci:DIR:NAME") and umoci use to find an image in a layout.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// WriteOCILayout adds img to the OCI image layout at path, creating the
// layout if needed. The image is stored with OCI media types (OCIMediaTypes),
// so OCI tools read it; its manifest digest then differs from a Docker-typed
// push of the same image. With refName, the image is annotated with it and replaces
// any image already carrying that name; without, it is appended. Every file is
// written whole and renamed into place, blobs before index.json (see
// AddToOCILayout), so a failure never leaves a torn file or the index pointing
// at missing blobs.
func WriteOCILayout(path string, img v1.Image, refName string) error {
	img, err := OCIMediaTypes(img)
	if err != nil {
		return fmt.Errorf("write OCI layout %s: %w", path, err)
	}
	var names []string
	if refName != "" {
		names = append(names, refName)
	}
	if err := AddToOCILayout(path, img, names...); err != nil {
		return fmt.Errorf("write OCI layout %s: %w", path, err)
	}
	return nil
}
