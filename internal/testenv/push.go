package testenv

import (
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// PushImageFromDir pushes a one-layer linux image whose filesystem is the
// tree under dir (owners, modes, links as on disk) and whose config is cfg,
// tagged repoTag in r. It returns the reference it pushed.
func PushImageFromDir(t testing.TB, r *Registry, repoTag, dir string, cfg v1.Config) string {
	t.Helper()
	return pushDir(t, r, repoTag, dir, cfg, tarOptions{}, "testenv: PushImageFromDir")
}

// pushDir tars dir with o and pushes it as in PushImageFromDir; createdBy
// goes into the history (it must not name temp dirs, to keep digests stable).
func pushDir(t testing.TB, r *Registry, repoTag, dir string, cfg v1.Config, o tarOptions, createdBy string) string {
	t.Helper()
	layerFile := filepath.Join(t.TempDir(), "layer.tar.gz")
	if err := writeTarGz(dir, layerFile, o); err != nil {
		t.Fatalf("testenv: tar %s: %v", dir, err)
	}
	return pushLayerFile(t, r, repoTag, layerFile, cfg, createdBy)
}

// pushLayerFile pushes a one-layer image made of the (gzipped) tar at
// layerFile with config cfg, recording createdBy in its history.
func pushLayerFile(t testing.TB, r *Registry, repoTag, layerFile string, cfg v1.Config, createdBy string) string {
	t.Helper()
	layer, err := tarball.LayerFromFile(layerFile)
	if err != nil {
		t.Fatalf("testenv: layer from %s: %v", layerFile, err)
	}
	return pushLayer(t, r, repoTag, layer, cfg, createdBy)
}

// pushLayer pushes a one-layer image with config cfg, recording createdBy
// in its history.
func pushLayer(t testing.TB, r *Registry, repoTag string, layer v1.Layer, cfg v1.Config, createdBy string) string {
	t.Helper()
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer:   layer,
		History: v1.History{CreatedBy: createdBy},
	})
	if err != nil {
		t.Fatalf("testenv: append layer: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("testenv: read config: %v", err)
	}
	cf = cf.DeepCopy()
	cf.Config = cfg
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatalf("testenv: set config: %v", err)
	}
	ref := r.Ref(repoTag)
	if err := pushImage(r, ref, img); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return ref
}

// pushImage writes img to ref in r.
func pushImage(r *Registry, ref string, img v1.Image) error {
	tag, err := name.NewTag(ref, r.nameOptions()...)
	if err != nil {
		return fmt.Errorf("parse %q: %w", ref, err)
	}
	if err := remote.Write(tag, img, r.RemoteOptions()...); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}
