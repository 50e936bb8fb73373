package integration

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/kilnbuild/kiln/internal/testenv"
)

// TestPodCustomPlatformFromIndex: a base that is a multi-platform index is resolved to the
// platform asked for with --custom-platform, and the built image says that platform.
func TestPodCustomPlatformFromIndex(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	amd64 := pull(t, reg, base)

	// The "arm64" variant has the same files under an arm64 config (nothing here runs it: the
	// Dockerfile has no RUN); the built image's config tells which variant was used.
	cf, err := amd64.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.Variant = "arm64", "v8"
	arm64, err := mutate.ConfigFile(amd64, cf)
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.DockerManifestList),
		mutate.IndexAddendum{Add: amd64, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm64, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}})
	idxRef := reg.Ref("base/multi:latest")
	ref, err := name.ParseReference(idxRef)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, reg.RemoteOptions()...); err != nil {
		t.Fatal(err)
	}

	ctx := writeContext(t, map[string]string{"Dockerfile": "ARG BASE\nFROM ${BASE}\nCOPY f /f\n", "f": "x\n"})
	for _, c := range []struct{ platform, arch, variant string }{
		{"linux/arm64", "arm64", "v8"},
		{"linux/amd64", "amd64", ""},
	} {
		dest := reg.Ref("it/platform:" + c.arch)
		buildInPod(t, ctx, 0, "--build-arg", "BASE="+idxRef, "--custom-platform", c.platform,
			"--destination", dest, "--insecure", "--insecure-pull")
		got := testenv.Config(t, reg, dest)
		if got.Architecture != c.arch || got.Variant != c.variant || got.OS != "linux" {
			t.Errorf("--custom-platform %s: image is %s/%s/%s", c.platform, got.OS, got.Architecture, got.Variant)
		}
		file(t, testenv.ExportImage(t, reg, dest), "f")
	}
}

func pull(t *testing.T, reg *testenv.Registry, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, reg.RemoteOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
