package builder

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// snapshotStep takes the layer of one instruction: of the given paths when the instruction
// knows what it wrote, of the whole root otherwise. It reports whether a layer was added.
func (b *build) snapshotStep(ctx context.Context, s *stageState, paths []string, hist v1.History) (bool, error) {
	start := time.Now()
	var layer v1.Layer
	var err error
	if paths != nil {
		l, e := b.snap.TakePaths(ctx, paths)
		if l != nil {
			layer = l
		}
		err = e
	} else {
		l, e := b.snap.TakeExcluding(ctx, s.volumes)
		if l != nil {
			layer = l
		}
		err = e
	}
	if err != nil {
		return false, fmt.Errorf("snapshot: %w", err)
	}
	if layer == nil {
		return false, nil
	}
	hist.EmptyLayer = false
	s.layers = append(s.layers, mutate.Addendum{Layer: layer, History: hist})
	s.history = append(s.history, hist)
	size, _ := layer.Size()
	b.o.reporter.Report(Event{Kind: EventSnapshot, Time: time.Now(), Stage: s.index, Duration: time.Since(start),
		Message: fmt.Sprintf("layer %s, %d bytes compressed", shortDigest(layer), size)})
	return true, nil
}

// snapshotStage takes the one layer of a stage in --single-snapshot mode. Volume directories
// not created yet are created first: Kaniko makes them at VOLUME, so its one layer has them.
func (b *build) snapshotStage(ctx context.Context, s *stageState) error {
	if _, err := b.createVolumes(s); err != nil {
		return err
	}
	hist := v1.History{CreatedBy: "single snapshot", Created: v1.Time{Time: b.now()}}
	_, err := b.snapshotStep(ctx, s, nil, hist)
	return err
}

// emptyLayer appends a layer with no files (--force-build-metadata).
func (b *build) emptyLayer(s *stageState, hist v1.History) error {
	var buf bytes.Buffer
	if err := tar.NewWriter(&buf).Close(); err != nil {
		return err
	}
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (ioReadCloser, error) { return nopCloser{bytes.NewReader(data)}, nil })
	if err != nil {
		return err
	}
	hist.EmptyLayer = false
	s.layers = append(s.layers, mutate.Addendum{Layer: l, History: hist})
	s.history = append(s.history, hist)
	return nil
}

// assemble makes the stage's image: base layers, then the stage's layers, with the config and
// history the instructions built.
func (b *build) assemble(s *stageState, baseCfg *v1.ConfigFile) (v1.Image, error) {
	img, err := mutate.Append(s.base, s.layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Config = s.cfg.Config
	cf.Author = s.cfg.Author
	cf.Created = v1.Time{Time: s.created}
	cf.History = append(append([]v1.History{}, baseCfg.History...), s.history...)
	if b.o.reproducible {
		for i := range cf.History {
			cf.History[i].Created = v1.Time{Time: time.Unix(0, 0).UTC()}
		}
	}
	cf.Container = ""
	cf.DockerVersion = ""
	return mutate.ConfigFile(img, cf)
}

func shortDigest(l v1.Layer) string {
	d, err := l.Digest()
	if err != nil {
		return "?"
	}
	if len(d.Hex) > 12 {
		return d.Algorithm + ":" + d.Hex[:12]
	}
	return d.String()
}
