package testenv

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// SkopeoInspectArchive runs `skopeo inspect docker-archive:PATH` on an image tarball (what
// `docker load` reads) and returns the decoded JSON.
func SkopeoInspectArchive(t testing.TB, path string) map[string]any {
	t.Helper()
	return skopeoJSON(t, &Registry{}, "inspect", "docker-archive:"+path)
}

// SkopeoInspectOCI runs `skopeo inspect oci:DIR` (the layout's only image) and returns the
// decoded JSON.
func SkopeoInspectOCI(t testing.TB, dir string) map[string]any {
	t.Helper()
	return skopeoJSON(t, &Registry{}, "inspect", "oci:"+dir)
}

// TryConfig fetches ref's config from r, returning the error instead of failing the test
// (for checking that something was NOT pushed).
func TryConfig(r *Registry, ref string) (*v1.ConfigFile, error) {
	n, err := name.ParseReference(ref, r.nameOptions()...)
	if err != nil {
		return nil, err
	}
	img, err := remote.Image(n, r.RemoteOptions()...)
	if err != nil {
		return nil, err
	}
	return img.ConfigFile()
}
