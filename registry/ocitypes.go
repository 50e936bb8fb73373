package registry

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// OCIMediaTypes returns img with OCI media types for its manifest, config and layers (the
// layer bytes are unchanged, so digests of layers stay the same; the manifest's digest does
// not). OCI tools such as umoci only read images typed this way.
func OCIMediaTypes(img v1.Image) (v1.Image, error) {
	mt, err := img.MediaType()
	if err != nil {
		return nil, err
	}
	if mt == types.OCIManifestSchema1 {
		return img, nil
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	adds := make([]mutate.Addendum, len(layers))
	for i, l := range layers {
		lmt, err := l.MediaType()
		if err != nil {
			return nil, err
		}
		oci, err := ociLayerType(lmt)
		if err != nil {
			return nil, err
		}
		adds[i] = mutate.Addendum{Layer: l, MediaType: oci}
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	out, err := mutate.Append(base, adds...)
	if err != nil {
		return nil, err
	}
	return mutate.ConfigFile(out, cf)
}

func ociLayerType(mt types.MediaType) (types.MediaType, error) {
	switch mt {
	case types.DockerLayer, types.OCILayer:
		return types.OCILayer, nil
	case types.DockerUncompressedLayer, types.OCIUncompressedLayer:
		return types.OCIUncompressedLayer, nil
	case types.DockerForeignLayer, types.OCIRestrictedLayer:
		return types.OCIRestrictedLayer, nil
	case types.OCILayerZStd:
		return mt, nil
	}
	return "", fmt.Errorf("layer media type %s has no OCI equivalent", mt)
}
