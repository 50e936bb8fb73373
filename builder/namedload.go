package builder

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/kilnbuild/kiln/buildcontext"
	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/internal/copier"
	"github.com/kilnbuild/kiln/snapshot"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// How named contexts (namedcontext.go) are fetched and turned into images.

// contextImage pulls the image of a docker-image:// context, for the build's platform.
func (b *build) contextImage(ctx context.Context, ref string) (v1.Image, error) {
	if ref == "scratch" {
		return b.baseImage(ctx, dockerfile.Base{Stage: -1, Scratch: true})
	}
	return b.baseImage(ctx, dockerfile.Base{Stage: -1, Image: ref})
}

// outsideRoot refuses a context path the build would clear or snapshot: in pod mode one that
// is not on the ignore list (a mounted volume, or below the executor's directory), in
// directory mode one inside the root.
func (b *build) outsideRoot(p, what string) error {
	abs, err := filepath.Abs(p)
	if err != nil {
		return err
	}
	if b.o.podMode {
		if !b.ignore.Ignored(abs) {
			return fmt.Errorf("in pod mode a %s context must be on a mounted volume or below %s: the build clears the rest of /", what, b.o.kanikoDir)
		}
		return nil
	}
	if rel, err := filepath.Rel(b.root, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		return fmt.Errorf("%s is inside the root %s", abs, b.root)
	}
	return nil
}

// layoutPath is the directory of an oci-layout:// value (PATH, PATH@DIGEST or PATH:TAG).
func layoutPath(v string) string {
	p, _, _ := splitLayout(v)
	return p
}

// splitLayout splits an oci-layout:// value into its directory, digest and tag.
func splitLayout(v string) (dir, digest, tag string) {
	if d, dg, ok := strings.Cut(v, "@"); ok {
		return d, dg, ""
	}
	base := path.Base(v)
	if i := strings.LastIndex(base, ":"); i > 0 {
		return strings.TrimSuffix(v, base[i:]), "", base[i+1:]
	}
	return v, "", ""
}

// layoutImage opens the image an oci-layout:// value names: by digest (of an image, or of an
// index resolved to the platform), by tag (the org.opencontainers.image.ref.name annotation),
// or the layout's only entry.
func layoutImage(v string, platform ocispec.Platform) (v1.Image, error) {
	dir, digest, tag := splitLayout(v)
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("open OCI layout %s: %w", dir, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	desc, err := pickDescriptor(m.Manifests, digest, tag)
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	if desc.MediaType.IsIndex() {
		child, err := idx.ImageIndex(desc.Digest)
		if err != nil {
			return nil, err
		}
		return imageForPlatform(child, platform)
	}
	return idx.Image(desc.Digest)
}

// pickDescriptor finds the entry of a layout's index.json that a digest or tag names.
func pickDescriptor(ds []v1.Descriptor, digest, tag string) (v1.Descriptor, error) {
	var found []v1.Descriptor
	for _, d := range ds {
		switch {
		case digest != "" && d.Digest.String() == digest,
			tag != "" && d.Annotations[ocispec.AnnotationRefName] == tag,
			digest == "" && tag == "":
			found = append(found, d)
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) == 0:
		return v1.Descriptor{}, fmt.Errorf("no image %s%s in its index.json", digest, tag)
	}
	return v1.Descriptor{}, fmt.Errorf("it holds %d images: name one with @sha256:... or :tag", len(found))
}

// imageForPlatform picks the platform's image of an index.
func imageForPlatform(idx v1.ImageIndex, p ocispec.Platform) (v1.Image, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range m.Manifests {
		if d.Platform != nil && d.Platform.OS == p.OS && d.Platform.Architecture == p.Architecture &&
			(p.Variant == "" || d.Platform.Variant == p.Variant) {
			return idx.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("no image for %s/%s in the index", p.OS, p.Architecture)
}

// gitContext checks out a Git context into the work directory.
func (b *build) gitContext(ctx context.Context, nc *namedContext) (string, error) {
	ref, _, err := buildcontext.ParseGitRef(nc.rest)
	if err != nil {
		return "", err
	}
	return b.checkoutGit(ctx, ref, b.contextWorkDir(nc))
}

// tarContext downloads and unpacks an archive context into the work directory.
func (b *build) tarContext(ctx context.Context, nc *namedContext) (string, error) {
	return buildcontext.Prepare(ctx, nc.rest, buildcontext.Options{WorkDir: b.contextWorkDir(nc)})
}

// contextWorkDir is where a fetched context goes.
func (b *build) contextWorkDir(nc *namedContext) string {
	return filepath.Join(b.workDir, "tmp", "context-"+strings.NewReplacer("/", "_", ":", "_").Replace(contextKey(nc.Name)))
}

// filesImage makes the image a directory context is as a base: no config but the platform,
// one layer of its files (after its .dockerignore) owned by root, as `FROM scratch` +
// `COPY . /` would give.
func (b *build) filesImage(ctx context.Context, nc *namedContext) (v1.Image, error) {
	scratch, err := b.baseImage(ctx, dockerfile.Base{Stage: -1, Scratch: true})
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(filepath.Join(b.workDir, "tmp"), "context-root-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if _, err := copier.Copy(ctx, copier.Request{SrcRoot: nc.dir, Sources: []string{"."}, Exclude: nc.exclude,
		Root: dir, Dest: "/", WorkDir: "/"}); err != nil {
		return nil, err
	}
	l, err := snapshot.New(dir, snapshot.WithCompression(layerCompression(b.o.compression)),
		snapshot.WithReproducible(b.o.reproducible), snapshot.WithLayerDir(filepath.Join(b.workDir, "layers"))).Take(ctx)
	if err != nil || l == nil {
		return scratch, err
	}
	return mutate.Append(scratch, mutate.Addendum{Layer: l, History: v1.History{
		CreatedBy: "build context " + nc.Name, Created: v1.Time{Time: time.Unix(0, 0).UTC()}}})
}

// imageDir unpacks an image once per build for COPY --from, keyed by key.
func (b *build) imageDir(ctx context.Context, key string, img v1.Image) (string, error) {
	if dir, ok := b.images[key]; ok {
		return dir, nil
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(b.workDir, "images", d.Hex)
	if err := b.extractFresh(ctx, img, dir); err != nil {
		return "", err
	}
	b.images[key] = dir
	return dir, nil
}
