package builder

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/kilnbuild/kiln/snapshot"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// COPY --link and ADD --link, as BuildKit defines them: `COPY --link src /dst` on top of a
// stage gives the image that `FROM scratch` + `COPY src /dst` would give, its layers stacked
// on the stage's. So:
//
//   - the sources are copied into an empty directory, and that directory, as it is, is the
//     layer: the copied files and the directories above them (created 0755, root-owned, or
//     as the copy made them), nothing else, no whiteouts. Nothing under the layer is read:
//     a symlink in the destination path that the stage has is not followed (the layer's
//     directory replaces it), an existing directory's files are not merged in, a destination
//     without a trailing slash that the stage has as a directory is written as a file, and
//     the directories above the destination take the layer's metadata;
//   - --chown takes numbers only (there is no /etc/passwd to read names from);
//   - the layer is unpacked into the root right away when the root is prepared, else kept
//     until an instruction needs the files, so a stage of cached steps and --link copies never
//     unpacks its base;
//   - the cache key of the step is made of its own inputs only (the instruction, the WORKDIR,
//     the source files, the layer options), not the key of the step before it: after a base
//     image or an earlier step changed, the layer still comes from the cache, as BuildKit
//     rebases it. The steps after it still depend on everything before.

// isLink reports whether an instruction is a COPY or ADD with --link.
func isLink(cmd instructions.Command) bool {
	switch c := cmd.(type) {
	case *instructions.CopyCommand:
		return c.Link
	case *instructions.AddCommand:
		return c.Link
	}
	return false
}

// linkStep runs a COPY/ADD --link that missed (or runs uncached) and adds its layer to the
// stage. It reports whether a layer was added.
func (b *build) linkStep(ctx context.Context, s *stageState, j copyJob, hist v1.History) (bool, error) {
	start := time.Now()
	l, paths, err := b.linkLayer(ctx, s, j)
	if err != nil || l == nil {
		return false, err
	}
	if err := b.applyLinked(ctx, s, l, paths); err != nil {
		return false, err
	}
	if b.o.singleSnapshot {
		return false, nil // the stage's one snapshot takes the files from the root
	}
	hist.EmptyLayer = false
	s.layers = append(s.layers, mutate.Addendum{Layer: l, History: hist})
	s.history = append(s.history, hist)
	size, _ := l.Size()
	b.o.reporter.Report(Event{Kind: EventSnapshot, Time: time.Now(), Stage: s.index, Duration: time.Since(start),
		Message: fmt.Sprintf("layer %s (--link), %d bytes compressed", shortDigest(l), size)})
	return true, nil
}

// linkLayer copies into an empty directory and makes the layer of what is there. It returns
// the layer (nil when nothing was copied) and the image paths it holds.
func (b *build) linkLayer(ctx context.Context, s *stageState, j copyJob) (*snapshot.Layer, []string, error) {
	dir, err := os.MkdirTemp(filepath.Join(b.workDir, "tmp"), "link-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	j.req.Root = dir
	if _, err := b.runCopy(ctx, s, j); err != nil {
		return nil, nil, err
	}
	paths, err := treePaths(dir)
	if err != nil || len(paths) == 0 {
		return nil, nil, err
	}
	snap := snapshot.New(dir,
		snapshot.WithCompression(layerCompression(b.o.compression)),
		snapshot.WithReproducible(b.o.reproducible),
		snapshot.WithLayerDir(filepath.Join(b.workDir, "layers")))
	l, err := snap.Take(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot of the --link layer: %w", err)
	}
	return l, paths, nil
}

// applyLinked puts a --link layer's files into the root: now, when the root holds the stage
// so far, or with the cached layers still to unpack when it does not.
func (b *build) applyLinked(ctx context.Context, s *stageState, l v1.Layer, paths []string) error {
	if s.lazy || len(s.pending) > 0 {
		s.pending = append(s.pending, l)
		return nil
	}
	if err := b.extractLayers(ctx, []v1.Layer{l}, b.root); err != nil {
		return fmt.Errorf("unpacking the --link layer into the root: %w", err)
	}
	if b.o.singleSnapshot {
		return nil
	}
	return b.snap.Accept(ctx, paths)
}

// treePaths lists the image paths of everything below dir.
func treePaths(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		out = append(out, "/"+filepath.ToSlash(rel))
		return err
	})
	return out, err
}
