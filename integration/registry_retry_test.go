package integration

import (
	"net/http"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/testenv"
)

// TestRetriesThroughFlakyRegistry puts a proxy in front of the registry that answers the first
// manifest GET (the base pull) and the first two upload starts (the push check, or the push
// when the check is skipped) with 503. --image-download-retry and --push-retry carry the build through;
// without one of them it fails naming the reference and the registry's answer.
func TestRetriesThroughFlakyRegistry(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	testenv.PushBusybox(t, reg, "base/busybox:latest")
	proxy := startFaultProxy(t, reg, nil)
	base := proxy.Addr + "/base/busybox:latest"
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM " + base + "\nRUN echo retried > /retried\n"})
	faults := []fault{
		{Method: http.MethodGet, PathPart: "/manifests/", Times: 1, Status: http.StatusServiceUnavailable, Message: "injected pull failure"},
		// Twice: a failed cross-repository mount is silently retried as a plain upload by
		// go-containerregistry, so one fault that happens to hit the base layer's mount would
		// be absorbed. With two, whichever uploads they hit, one that has no fallback fails.
		{Method: http.MethodPost, PathPart: "/blobs/uploads/", Times: 2, Status: http.StatusServiceUnavailable, Message: "injected push failure"},
	}
	build := func(dest string, extra ...string) testenv.Pod {
		return registryPod(t, ctx, append([]string{"--destination", proxy.Addr + "/" + dest, "--insecure", "--insecure-pull"}, extra...)...)
	}

	t.Run("no pull retries", func(t *testing.T) {
		proxy.inject(faults...)
		res := runPodWant(t, build("team/retry:1", "--push-retry", "3"), false)
		if !strings.Contains(res.Stderr, "pull "+base) || !strings.Contains(res.Stderr, "injected pull failure") {
			t.Errorf("log does not name the base and the 503:\n%s", res.Stderr)
		}
		notPushed(t, reg, reg.Ref("team/retry:1"))
	})
	t.Run("no push retries", func(t *testing.T) {
		proxy.inject(faults...)
		// Without the check the fault hits the push itself, after the steps ran.
		res := runPodWant(t, build("team/retry:2", "--image-download-retry", "3", "--skip-push-permission-check"), false)
		if !strings.Contains(res.Stderr, "push "+proxy.Addr+"/team/retry:2") || !strings.Contains(res.Stderr, "injected push failure") {
			t.Errorf("log does not name the destination and the 503:\n%s", res.Stderr)
		}
		if !strings.Contains(res.Stderr, "[1/1]") {
			t.Errorf("with --skip-push-permission-check the build should run before the push fails:\n%s", res.Stderr)
		}
		notPushed(t, reg, reg.Ref("team/retry:2"))
	})
	t.Run("both retried", func(t *testing.T) {
		proxy.inject(faults...)
		runPodWant(t, build("team/retry:3", "--image-download-retry", "3", "--push-retry", "3", "--skip-push-permission-check"), true)
		if n := proxy.count(http.MethodGet, "/manifests/"); n < 2 {
			t.Errorf("%d manifest GETs: the injected failure was not retried", n)
		}
		if e := file(t, testenv.ExportImage(t, reg, reg.Ref("team/retry:3")), "retried"); string(e.Content) != "retried\n" {
			t.Errorf("/retried = %q", e.Content)
		}
	})
}

// TestPushIgnoreImmutableTagErrors makes the proxy refuse the manifest PUT the way Artifact
// Registry refuses to overwrite an immutable tag: the build fails, unless
// --push-ignore-immutable-tag-errors is given.
func TestPushIgnoreImmutableTagErrors(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	proxy := startFaultProxy(t, reg, nil)
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM " + base + "\nRUN echo x > /x\n"})
	immutable := fault{Method: http.MethodPut, PathPart: "/manifests/", Times: 100, Status: http.StatusBadRequest,
		Message: "The repository has enabled tag immutability: tag 1 exists"}
	dest := proxy.Addr + "/team/immutable:1"

	proxy.inject(immutable)
	res := runPodWant(t, registryPod(t, ctx, "--destination", dest, "--insecure", "--insecure-pull"), false)
	if !strings.Contains(res.Stderr, "tag immutability") {
		t.Errorf("log does not give the registry's refusal:\n%s", res.Stderr)
	}
	proxy.inject(immutable)
	runPodWant(t, registryPod(t, ctx, "--destination", dest, "--insecure", "--insecure-pull", "--push-ignore-immutable-tag-errors"), true)
	if proxy.count(http.MethodPut, "/manifests/") == 0 {
		t.Error("the manifest was never PUT: the refusal was not exercised")
	}
}
