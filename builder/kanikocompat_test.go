package builder_test

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/dockerfile"
)

// buildConfig builds a Dockerfile that runs no RUN (so it needs no root) in a directory root
// and returns the image's config.
func buildConfig(t *testing.T, df string, files map[string]string, opts ...builder.Option) (*v1.ConfigFile, v1.Image) {
	t.Helper()
	dir := t.TempDir()
	ctxDir := filepath.Join(dir, "context")
	for p, content := range files {
		full := filepath.Join(ctxDir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(ctxDir, 0o755); err != nil {
		t.Fatal(err)
	}
	opts = append([]builder.Option{builder.WithDirectoryRoot(filepath.Join(dir, "rootfs")),
		builder.WithWorkDir(filepath.Join(dir, "work")), builder.WithContextDir(ctxDir)}, opts...)
	img, err := builder.Build(context.Background(), dockerfile.Source{Name: "Dockerfile", Data: []byte(df)}, opts...)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf, img
}

// imageFiles flattens an image into path -> content ("" for entries other than regular files).
func imageFiles(t *testing.T, img v1.Image) map[string]string {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	out := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = string(b)
	}
}

const dockerDefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// TestDefaultPathFromScratch: a stage whose base config has no PATH gets Docker's default
// PATH in its Env (first, as Kaniko and BuildKit put it), and an ENV PATH replaces it in place.
func TestDefaultPathFromScratch(t *testing.T) {
	cf, _ := buildConfig(t, "FROM scratch\nENV A=1\n", nil)
	if want := []string{dockerDefaultPath, "A=1"}; !slices.Equal(cf.Config.Env, want) {
		t.Errorf("FROM scratch: Env = %q, want %q", cf.Config.Env, want)
	}
	cf, _ = buildConfig(t, "FROM scratch\nENV A=1 PATH=/opt/bin\n", nil)
	if want := []string{"PATH=/opt/bin", "A=1"}; !slices.Equal(cf.Config.Env, want) {
		t.Errorf("ENV PATH: Env = %q, want %q", cf.Config.Env, want)
	}
	// A later stage built on one that set its own PATH keeps it.
	cf, _ = buildConfig(t, "FROM scratch AS a\nENV PATH=/x\nFROM a\nLABEL l=1\n", nil)
	if want := []string{"PATH=/x"}; !slices.Equal(cf.Config.Env, want) {
		t.Errorf("FROM a stage with PATH: Env = %q, want %q", cf.Config.Env, want)
	}
}

// TestParentStageArgs: the ARGs declared in a stage are visible in the stages built FROM it,
// transitively, with the values they had at the end of the parent (Kaniko and BuildKit agree).
func TestParentStageArgs(t *testing.T) {
	df := `FROM scratch AS base
ARG NAME="base"
FROM base AS dev
ARG NAME="$NAME-dev"
LABEL dev=$NAME
FROM dev AS custom
ARG NAME
LABEL custom=$NAME inherited=${NAME}
FROM scratch AS unrelated
LABEL unrelated=[$NAME]
FROM custom
ENV FROMARG=$NAME
`
	cf, _ := buildConfig(t, df, nil)
	for k, want := range map[string]string{"dev": "base-dev", "custom": "base-dev", "inherited": "base-dev"} {
		if got := cf.Config.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	if !slices.Contains(cf.Config.Env, "FROMARG=base-dev") {
		t.Errorf("a stage FROM custom must see NAME=base-dev without redeclaring it: Env %q", cf.Config.Env)
	}
	cf, _ = buildConfig(t, df, nil, builder.WithTarget("unrelated"))
	if got := cf.Config.Labels["unrelated"]; got != "[]" {
		t.Errorf("a stage not built on base must not see its ARG: %q", got)
	}
	// A build arg still wins over the inherited value when the child declares the ARG.
	name := "given"
	cf, _ = buildConfig(t, df, nil, builder.WithBuildArgs(dockerfile.BuildArgs{"NAME": &name}))
	if got := cf.Config.Labels["custom"]; got != "given" {
		t.Errorf("with --build-arg NAME=given: custom = %q", got)
	}
}

// TestArgNameExpanded: an ARG's name is expanded before it is declared (Kaniko's rule), so
// `ARG ${src}=...` declares the variable src names and COPY $file3 copies that path.
func TestArgNameExpanded(t *testing.T) {
	df := `FROM scratch
ENV src file3
ARG ${src}=context/bar/baz
COPY $file3 /baz
LABEL file3=$file3
`
	cf, img := buildConfig(t, df, map[string]string{"context/bar/baz": "baz\n", "other": "x\n"})
	if got := cf.Config.Labels["file3"]; got != "context/bar/baz" {
		t.Errorf("$file3 = %q, want context/bar/baz", got)
	}
	files := imageFiles(t, img)
	if got := files["baz"]; got != "baz\n" {
		t.Errorf("/baz = %q, want the file context/bar/baz", got)
	}
	if _, ok := files["other"]; ok {
		t.Errorf("the whole context was copied: %v", files)
	}
}

// TestEmptyCopySourceIsAnError: a COPY or ADD source that expands to nothing fails the
// build naming the Dockerfile and line; it never copies the whole context.
func TestEmptyCopySourceIsAnError(t *testing.T) {
	for _, ins := range []string{"COPY $nothing /baz", "ADD ${nothing} /baz", "COPY a $nothing /dir/"} {
		dir := t.TempDir()
		ctxDir := filepath.Join(dir, "context")
		if err := os.MkdirAll(ctxDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ctxDir, "a"), []byte("a"), 0o644); err != nil {
			t.Fatal(err)
		}
		df := "FROM scratch\nARG nothing\n" + ins + "\n"
		_, err := builder.Build(context.Background(), dockerfile.Source{Name: "Dockerfile", Data: []byte(df)},
			builder.WithDirectoryRoot(filepath.Join(dir, "rootfs")), builder.WithWorkDir(filepath.Join(dir, "work")),
			builder.WithContextDir(ctxDir))
		if err == nil || !strings.Contains(err.Error(), "Dockerfile:3") || !strings.Contains(err.Error(), "empty") {
			t.Errorf("%s: error %v, want one naming Dockerfile:3 and the empty source", ins, err)
		}
	}
}

// TestVolumeDirectories: VOLUME creates its directory and missing parents (root-owned 0755, as
// Kaniko does) before the next instruction that changes files, whose layer records them; COPY
// into a volume path is kept. A VOLUME with no such instruction after it adds no directory
// (Kaniko snapshots it with the next instruction only), except in single-snapshot mode.
func TestVolumeDirectories(t *testing.T) {
	df := "FROM scratch\nVOLUME /foo1 /srv/data/inner\nLABEL x=1\nCOPY f /srv/data/inner/f\nVOLUME /late\n"
	cf, img := buildConfig(t, df, map[string]string{"f": "f\n"})
	for _, v := range []string{"/foo1", "/srv/data/inner", "/late"} {
		if _, ok := cf.Config.Volumes[v]; !ok {
			t.Errorf("config Volumes %v lacks %s", cf.Config.Volumes, v)
		}
	}
	files := imageEntries(t, img)
	for _, p := range []string{"foo1", "srv", "srv/data", "srv/data/inner"} {
		h, ok := files[p]
		if !ok || h.Typeflag != tar.TypeDir || h.Mode&0o7777 != 0o755 || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: %+v, want a root-owned 0755 directory", p, h)
		}
	}
	if h, ok := files["srv/data/inner/f"]; !ok || h.Typeflag != tar.TypeReg {
		t.Errorf("COPY into a volume path must be kept: %+v", h)
	}
	if _, ok := files["late"]; ok {
		t.Errorf("/late is only snapshotted by a later instruction, and there is none")
	}
	if n := len(mustLayers(t, img)); n != 1 {
		t.Errorf("%d layers, want 1 (VOLUME itself adds none)", n)
	}
	_, img = buildConfig(t, df, map[string]string{"f": "f\n"}, builder.WithSingleSnapshot(true))
	if _, ok := imageEntries(t, img)["late"]; !ok {
		t.Errorf("single snapshot: /late missing (Kaniko creates it at VOLUME)")
	}
}

func mustLayers(t *testing.T, img v1.Image) []v1.Layer {
	t.Helper()
	l, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// imageEntries flattens an image into path -> tar header.
func imageEntries(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")] = hdr
	}
}
