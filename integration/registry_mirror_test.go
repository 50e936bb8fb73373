package integration

import (
	"net/http"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/testenv"
)

// TestDockerHubMirrorInPod builds "FROM busybox" (a Docker Hub short name) on a machine with
// no internet: --registry-mirror serves library/busybox; KANIKO_REGISTRY_MIRROR does the same;
// a mirror without the image plus --skip-default-registry-fallback fails naming the mirror
// before any step.
func TestDockerHubMirrorInPod(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	testenv.PushBusybox(t, reg, "library/busybox:latest")
	mirror := startFaultProxy(t, reg, nil) // counts what the mirror was asked
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo mirrored > /mirrored\n"})

	t.Run("flag", func(t *testing.T) {
		mirror.inject()
		dest := reg.Ref("team/mirrored:1")
		runPodWant(t, registryPod(t, ctx, "--registry-mirror", mirror.Addr, "--insecure-registry", mirror.Addr,
			"--destination", dest, "--insecure"), true)
		if mirror.count(http.MethodGet, "/v2/library/busybox/manifests/latest") == 0 {
			t.Error("the mirror was not asked for library/busybox:latest")
		}
		file(t, testenv.ExportImage(t, reg, dest), "mirrored")
	})
	t.Run("environment", func(t *testing.T) {
		mirror.inject()
		dest := reg.Ref("team/mirrored:2")
		p := registryPod(t, ctx, "--insecure-registry", mirror.Addr, "--destination", dest, "--insecure")
		p.Env = []string{"KANIKO_REGISTRY_MIRROR=" + mirror.Addr}
		runPodWant(t, p, true)
		if mirror.count(http.MethodGet, "/v2/library/busybox/manifests/latest") == 0 {
			t.Error("the mirror from KANIKO_REGISTRY_MIRROR was not asked")
		}
	})
	t.Run("missing, no fallback", func(t *testing.T) {
		missing := writeContext(t, map[string]string{"Dockerfile": "FROM alpine:3.20\nRUN echo ran > /ran-marker\n"})
		dest := reg.Ref("team/mirrored:3")
		res := runPodWant(t, registryPod(t, missing, "--registry-mirror", mirror.Addr, "--insecure-registry", mirror.Addr,
			"--skip-default-registry-fallback", "--destination", dest, "--insecure"), false)
		if !strings.Contains(res.Stderr, "mirror "+mirror.Addr) || !strings.Contains(res.Stderr, "alpine:3.20") {
			t.Errorf("log does not name the mirror and the image:\n%s", res.Stderr)
		}
		noStepRan(t, res, "ran-marker")
		notPushed(t, reg, dest)
	})
}

// TestRegistryMapInPod rewrites a registry host that does not exist to the local registry,
// once with --registry-map and once with KANIKO_REGISTRY_MAP, and checks the base came from
// the mapped registry.
func TestRegistryMapInPod(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	testenv.PushBusybox(t, reg, "team/base:1")
	mapped := startFaultProxy(t, reg, nil)
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM registry.invalid:5000/team/base:1\nRUN echo mapped > /mapped\n"})
	common := []string{"--insecure-registry", mapped.Addr, "--skip-default-registry-fallback", "--insecure"}

	mapped.inject()
	dest := reg.Ref("team/mapped:1")
	runPodWant(t, registryPod(t, ctx, append(common, "--destination", dest, "--registry-map", "registry.invalid:5000="+mapped.Addr)...), true)
	if mapped.count(http.MethodGet, "/v2/team/base/manifests/1") == 0 {
		t.Error("the mapped registry was not asked for team/base:1")
	}
	file(t, testenv.ExportImage(t, reg, dest), "mapped")

	mapped.inject()
	p := registryPod(t, ctx, append(common, "--destination", reg.Ref("team/mapped:2"))...)
	p.Env = []string{"KANIKO_REGISTRY_MAP=other.invalid=nowhere.invalid;registry.invalid:5000=" + mapped.Addr}
	runPodWant(t, p, true)
	if mapped.count(http.MethodGet, "/v2/team/base/manifests/1") == 0 {
		t.Error("the mapped registry from KANIKO_REGISTRY_MAP was not asked")
	}
}
