package registry

import (
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/kilnbuild/kiln/internal/atomicfile"
)

// PlaceholderTag is the tag a tarball gets when no destination is given. It
// is Kaniko's, so scripts that `docker load` Kaniko's tarballs keep working.
const PlaceholderTag = "docker.io/unset-repo/unset-image-name:latest"

// WriteTarball writes img to path as a tarball that `docker load` and
// `skopeo copy docker-archive:` accept, tagged with every tag (":latest" is
// implied; PlaceholderTag when tags is empty). The file appears only once it
// is complete.
func WriteTarball(path string, img v1.Image, tags []string) error {
	if len(tags) == 0 {
		tags = []string{PlaceholderTag}
	}
	refs := make(map[name.Reference]v1.Image, len(tags))
	for _, t := range tags {
		tag, err := name.NewTag(t, name.WeakValidation)
		if err != nil {
			return fmt.Errorf("write tarball %s: tag %q: %w", path, t, err)
		}
		refs[tag] = img
	}
	err := atomicfile.Write(path, 0o644, func(w io.Writer) error {
		return tarball.MultiRefWrite(refs, w)
	})
	if err != nil {
		return fmt.Errorf("write tarball %s: %w", path, err)
	}
	return nil
}
