package registry

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// brokenLayer reports a real layer's digests but fails half-way through its
// content, like a network error mid-stream.
type brokenLayer struct{ v1.Layer }

func (b brokenLayer) Compressed() (io.ReadCloser, error) {
	rc, err := b.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	return io.NopCloser(io.MultiReader(io.LimitReader(rc, 10), errReader{})), nil
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("injected read failure") }

func brokenImage(t *testing.T) v1.Image {
	t.Helper()
	ls, _ := randomImage(t, 1).Layers()
	img, err := mutate.AppendLayers(randomImage(t, 1), brokenLayer{ls[0]})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// skopeoInspect runs `skopeo inspect` on transport:path and returns the
// parsed output, or skips when skopeo is not installed.
func skopeoInspect(t *testing.T, ref string) map[string]any {
	t.Helper()
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo not installed; cannot check with an independent reader")
	}
	out, err := exec.Command("skopeo", "inspect", ref).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect %s: %v\n%s", ref, err, out)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestWriteTarball(t *testing.T) {
	img := randomImage(t, 2)
	path := filepath.Join(t.TempDir(), "out", "image.tar") // parent made on demand
	tags := []string{"registry.example/app:1", "registry.example/app"}
	if err := WriteTarball(path, img, tags); err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"registry.example/app:1", "registry.example/app:latest"} {
		tg, _ := name.NewTag(tag)
		got, err := tarball.ImageFromPath(path, &tg)
		if err != nil {
			t.Fatalf("reading %s from the tarball: %v", tag, err)
		}
		if digestOf(t, got) != digestOf(t, img) {
			t.Errorf("%s: digest differs", tag)
		}
	}
	m := skopeoInspect(t, "docker-archive:"+path+":registry.example/app:1")
	if m["Digest"] == nil || len(m["Layers"].([]any)) != 2 {
		t.Errorf("skopeo sees %v", m)
	}
}

func TestWriteTarballWithoutTagsUsesPlaceholder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "image.tar")
	if err := WriteTarball(path, randomImage(t, 1), nil); err != nil {
		t.Fatal(err)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(path) })
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || len(m[0].RepoTags) != 1 || m[0].RepoTags[0] != PlaceholderTag {
		t.Errorf("RepoTags = %v", m)
	}
}

func TestFailedWritesLeaveNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "image.tar")
	err := WriteTarball(path, brokenImage(t), []string{"app:1"})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want a failure naming %s", err, path)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}

	// An existing file is kept intact by a failed rewrite.
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteTarball(path, brokenImage(t), nil); err == nil {
		t.Fatal("broken image written")
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("old file changed to %d bytes", len(b))
	}
}

func TestWriteOCILayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	// skopeo only resolves names of OCI-typed manifests in a layout.
	three := mutate.ConfigMediaType(mutate.MediaType(randomImage(t, 1), types.OCIManifestSchema1), types.OCIConfigJSON)
	one, two := randomImage(t, 1), randomImage(t, 2)
	for _, step := range []struct {
		img v1.Image
		ref string
	}{{one, "app:1"}, {two, ""}, {three, "app:1"}} { // three replaces one
		if err := WriteOCILayout(dir, step.img, step.ref); err != nil {
			t.Fatal(err)
		}
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 {
		t.Fatalf("%d manifests in index.json, want 2", len(im.Manifests))
	}
	var named v1.Descriptor
	for _, d := range im.Manifests {
		if d.Annotations[refNameAnnotation] == "app:1" {
			named = d
		}
	}
	if named.Digest != digestOf(t, three) {
		t.Errorf("app:1 -> %s, want the last image written %s", named.Digest, digestOf(t, three))
	}
	// Docker-typed images are stored with OCI media types.
	twoOCI, err := OCIMediaTypes(two)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := idx.Image(digestOf(t, twoOCI)); err != nil {
		t.Errorf("unnamed image missing: %v", err)
	}
	m := skopeoInspect(t, "oci:"+dir+":app:1")
	if m["Digest"] != digestOf(t, three).String() {
		t.Errorf("skopeo sees digest %v", m["Digest"])
	}
}

func TestDigestFiles(t *testing.T) {
	dir := t.TempDir()
	d := digestOf(t, randomImage(t, 1))
	dests := []string{"localhost:5000/app:1", "ubuntu", "gcr.io/p/app:v2"}

	check := func(file, want string) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != want {
			t.Errorf("%s = %q, want %q", file, b, want)
		}
	}
	if err := WriteDigestFile(filepath.Join(dir, "digest"), d); err != nil {
		t.Fatal(err)
	}
	check("digest", d.String())

	if err := WriteImageNameWithDigestFile(filepath.Join(dir, "names"), dests, d); err != nil {
		t.Fatal(err)
	}
	check("names", "localhost:5000/app@"+d.String()+"\n"+
		"index.docker.io/library/ubuntu@"+d.String()+"\n"+
		"gcr.io/p/app@"+d.String()+"\n")

	if err := WriteImageNameTagWithDigestFile(filepath.Join(dir, "tags"), dests, d); err != nil {
		t.Fatal(err)
	}
	check("tags", "localhost:5000/app:1@"+d.String()+"\n"+
		"index.docker.io/library/ubuntu:latest@"+d.String()+"\n"+
		"gcr.io/p/app:v2@"+d.String()+"\n")

	err := WriteImageNameWithDigestFile(filepath.Join(dir, "bad"), []string{"app@" + d.String()}, d)
	if err == nil {
		t.Error("digest destination accepted")
	}
	if _, err := os.Stat(filepath.Join(dir, "bad")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a file was written for a bad destination")
	}
}

func TestOCIMediaTypes(t *testing.T) {
	img := randomImage(t, 2) // Docker-typed
	oci, err := OCIMediaTypes(img)
	if err != nil {
		t.Fatal(err)
	}
	m, err := oci.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("manifest %s, config %s", m.MediaType, m.Config.MediaType)
	}
	orig, _ := img.Manifest()
	for i, l := range m.Layers {
		if l.MediaType != types.OCILayer {
			t.Errorf("layer %d media type %s", i, l.MediaType)
		}
		if l.Digest != orig.Layers[i].Digest || l.Size != orig.Layers[i].Size {
			t.Errorf("layer %d changed: %v vs %v", i, l, orig.Layers[i])
		}
	}
	if m.Config.Digest != orig.Config.Digest {
		t.Errorf("config changed: %s vs %s", m.Config.Digest, orig.Config.Digest)
	}
	if again, _ := OCIMediaTypes(oci); digestOf(t, again) != digestOf(t, oci) {
		t.Errorf("converting an OCI image again changed it")
	}
}
