package registry

import (
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/internal/atomicfile"
)

// WriteDigestFile writes the image digest ("sha256:...", no newline) to path
// (--digest-file).
func WriteDigestFile(path string, d v1.Hash) error {
	return writeText("digest file", path, d.String())
}

// WriteImageNameWithDigestFile writes one "<repository>@<digest>" line per
// destination (--image-name-with-digest-file), the repository fully
// qualified as Kaniko writes it ("index.docker.io/library/app@sha256:...").
func WriteImageNameWithDigestFile(path string, destinations []string, d v1.Hash) error {
	return writeNames("image-name-with-digest file", path, destinations, d, false)
}

// WriteImageNameTagWithDigestFile writes one "<repository>:<tag>@<digest>"
// line per destination (--image-name-tag-with-digest-file).
func WriteImageNameTagWithDigestFile(path string, destinations []string, d v1.Hash) error {
	return writeNames("image-name-tag-with-digest file", path, destinations, d, true)
}

func writeNames(what, path string, destinations []string, d v1.Hash, withTag bool) error {
	o := makeOptions(nil)
	var b strings.Builder
	for _, dest := range destinations {
		tag, err := o.parseDestination(dest)
		if err != nil {
			return fmt.Errorf("write %s %s: %w", what, path, err)
		}
		b.WriteString(tag.Context().Name())
		if withTag {
			b.WriteString(":" + tag.TagStr())
		}
		b.WriteString("@" + d.String() + "\n")
	}
	return writeText(what, path, b.String())
}

func writeText(what, path, text string) error {
	err := atomicfile.Write(path, 0o644, func(w io.Writer) error {
		_, err := io.WriteString(w, text)
		return err
	})
	if err != nil {
		return fmt.Errorf("write %s %s: %w", what, path, err)
	}
	return nil
}
