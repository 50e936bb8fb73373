package imagestage

import (
	"reflect"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/executor"
	"github.com/kilnbuild/kiln/pipeline/spec"
)

func fullImage() *spec.Image {
	return &spec.Image{
		Dockerfile:      "docker/Dockerfile",
		Context:         "app",
		Destinations:    []string{"reg.example/team/minimalapi:${BUILD_NUMBER}", "reg.example/team/minimalapi:latest"},
		Cache:           true,
		CacheRepo:       "reg.example/team/kaniko-cache",
		CacheCopyLayers: true,
		Target:          "runtime",
		BuildArgs:       map[string]string{"VERSION": "1.0", "A_FIRST": "x=y", "EMPTY": ""},
		Flags:           []string{"--compression=zstd", "--insecure-registry=reg.example", "--cache-run-layers=false"},
	}
}

func TestExecutorArgsGolden(t *testing.T) {
	for ws, want := range map[string][]string{
		"/workspace": {
			"--context=dir:///workspace/app",
			"--dockerfile=/workspace/app/docker/Dockerfile",
			"--destination=reg.example/team/minimalapi:${BUILD_NUMBER}",
			"--destination=reg.example/team/minimalapi:latest",
			"--cache=true",
			"--cache-repo=reg.example/team/kaniko-cache",
			"--cache-copy-layers=true",
			"--target=runtime",
			"--build-arg=A_FIRST=x=y",
			"--build-arg=EMPTY=",
			"--build-arg=VERSION=1.0",
			"--compression=zstd",
			"--insecure-registry=reg.example",
			"--cache-run-layers=false",
		},
		"${CI_PROJECT_DIR}": {
			"--context=dir://${CI_PROJECT_DIR}/app",
			"--dockerfile=${CI_PROJECT_DIR}/app/docker/Dockerfile",
		},
	} {
		got := ExecutorArgs(fullImage(), ws)
		if !reflect.DeepEqual(got[:len(want)], want) {
			t.Errorf("ExecutorArgs(%s):\n got %q\nwant %q", ws, got, want)
		}
	}
	// The smallest image section: context ".", the default Dockerfile, one destination.
	got := ExecutorArgs(&spec.Image{Destinations: []string{"r/app:1"}}, "/workspace")
	want := []string{"--context=dir:///workspace", "--dockerfile=/workspace/Dockerfile", "--destination=r/app:1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("minimal: got %q, want %q", got, want)
	}
}

// TestExecutorArgsRoundTrip parses the args with the executor's own parser: every field of the
// image section arrives where the executor reads it, and image.flags override.
func TestExecutorArgsRoundTrip(t *testing.T) {
	c, err := executor.ParseFlags(ExecutorArgs(fullImage(), "/workspace"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Context != "dir:///workspace/app" || c.Dockerfile != "/workspace/app/docker/Dockerfile" || c.Target != "runtime" {
		t.Errorf("context %q, dockerfile %q, target %q", c.Context, c.Dockerfile, c.Target)
	}
	if want := []string{"reg.example/team/minimalapi:${BUILD_NUMBER}", "reg.example/team/minimalapi:latest"}; !reflect.DeepEqual(c.Destinations, want) {
		t.Errorf("destinations %q", c.Destinations)
	}
	if !c.Cache || c.CacheRepo != "reg.example/team/kaniko-cache" || !c.CacheCopyLayers || c.CacheRunLayers {
		t.Errorf("cache: %v %q copy %v run %v", c.Cache, c.CacheRepo, c.CacheCopyLayers, c.CacheRunLayers)
	}
	if want := []string{"A_FIRST=x=y", "EMPTY=", "VERSION=1.0"}; !reflect.DeepEqual(c.BuildArgs, want) {
		t.Errorf("build args %q", c.BuildArgs)
	}
	if c.Compression != "zstd" || !reflect.DeepEqual(c.InsecureRegistries, []string{"reg.example"}) {
		t.Errorf("flags: compression %q, insecure registries %q", c.Compression, c.InsecureRegistries)
	}
}

func TestBadFlagsNameImageFlags(t *testing.T) {
	for flags, want := range map[string]string{
		"--cahce=true":       "image.flags: unknown flag: --cahce",
		"--push-retry=lots":  `image.flags: invalid argument "lots" for "--push-retry"`,
		"--cache true":       `image.flags: "true" is not a flag`,
		"--compression=lz4":  "image: --compression=lz4: must be gzip or zstd",
		"--snapshotMode=bad": "image: --snapshot-mode=bad",
	} {
		img := &spec.Image{Destinations: []string{"127.0.0.1:1/app:1"}, Flags: strings.Fields(flags)}
		_, err := Run(t.Context(), img, Options{Workspace: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("flags %q: err = %v, want it to contain %q", flags, err, want)
		}
	}
	img := &spec.Image{Destinations: []string{"127.0.0.1:1/app:1"}}
	_, err := Run(t.Context(), img, Options{Workspace: t.TempDir(), ExtraFlags: []string{"--nope"}})
	if err == nil || !strings.Contains(err.Error(), `extra executor flags ["--nope"]: unknown flag: --nope`) {
		t.Errorf("bad extra flag: %v", err)
	}
	ws := t.TempDir()
	_, err = Run(t.Context(), img, Options{Workspace: ws, WorkDir: ws + "/build"})
	if err == nil || !strings.Contains(err.Error(), "inside the workspace") {
		t.Errorf("work dir in the workspace: %v", err)
	}
}
