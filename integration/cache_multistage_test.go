package integration

import (
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/testenv"
)

const cacheMultiStageDockerfile = `ARG BASE
FROM ${BASE} AS build
RUN echo built > /artifact.txt && echo RAN-BUILD

FROM build AS extended
RUN cat /artifact.txt > /extended.txt && echo RAN-EXTENDED

FROM ${BASE}
COPY --from=build /artifact.txt /from-build.txt
COPY --from=extended /extended.txt /from-extended.txt
RUN cat /from-build.txt /from-extended.txt > /both.txt && echo RAN-FINAL
`

// TestPodLayerCacheAcrossStages: on a warm build every RUN of every stage hits, so no stage's
// root is unpacked for its own steps; the final stage's uncached COPY --from steps must still
// find the earlier stages' files (which exist only in cached layers), and the image must equal
// the cold build's.
func TestPodLayerCacheAcrossStages(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	ctx := writeContext(t, map[string]string{"Dockerfile": cacheMultiStageDockerfile})
	cacheDir := t.TempDir()
	dest := reg.Ref("it/cached-stages:1")
	build := func() testenv.PodResult {
		t.Helper()
		p := registryPod(t, ctx, "--build-arg", "BASE="+base, "--destination", dest,
			"--insecure", "--insecure-pull", "--reproducible", "--cache=true", "--cache-dir", "/cache",
			"--cache-repo", reg.Ref("it/stages-cache"), "--digest-file", "/workspace/digest")
		p.Mounts = map[string]string{"/cache": cacheDir}
		return runPodWant(t, p, true)
	}
	cold := build()
	for _, marker := range []string{"RAN-BUILD", "RAN-EXTENDED", "RAN-FINAL"} {
		if !strings.Contains(cold.Stdout, marker) {
			t.Fatalf("cold build did not run %s:\n%s", marker, cold.Stdout)
		}
	}
	coldDigest := readFile(t, ctx+"/digest")

	warm := build()
	for _, marker := range []string{"RAN-BUILD", "RAN-EXTENDED", "RAN-FINAL"} {
		if strings.Contains(warm.Stdout, marker) {
			t.Errorf("warm build ran %s again:\n%s", marker, warm.Stdout)
		}
	}
	if got := readFile(t, ctx+"/digest"); got != coldDigest {
		t.Errorf("warm build digest %s, cold %s (--reproducible)", got, coldDigest)
	}
	fs := testenv.ExportImage(t, reg, dest)
	if got := string(file(t, fs, "both.txt").Content); got != "built\nbuilt\n" {
		t.Errorf("/both.txt = %q", got)
	}
	if got := string(file(t, fs, "from-extended.txt").Content); got != "built\n" {
		t.Errorf("/from-extended.txt = %q", got)
	}
}
