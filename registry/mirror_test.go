package registry

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

func TestPullFromDockerHubMirrorWithPrefix(t *testing.T) {
	mirror := newTestRegistry(t)
	img := randomImage(t, 1)
	seed(t, mirror.host+"/hub/library/alpine:3", img)

	// Docker Hub itself is never contacted: the mirror has the image.
	got, err := Pull(context.Background(), "alpine:3", anon(), WithMirrors(mirror.host+"/hub"))
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, got) != digestOf(t, img) {
		t.Error("wrong image from the mirror")
	}
	if mirror.count(http.MethodGet, "/v2/hub/library/alpine/manifests/3") == 0 {
		t.Error("the mirror was not asked for hub/library/alpine:3")
	}
}

func TestPullRegistryMapFallsBackUnlessSkipped(t *testing.T) {
	origin, first, second := newTestRegistry(t), newTestRegistry(t), newTestRegistry(t)
	onOrigin, onSecond := randomImage(t, 1), randomImage(t, 1)
	seed(t, origin.host+"/team/app:1", onOrigin)
	seed(t, second.host+"/team/app:1", onSecond)
	ctx := context.Background()
	ref := origin.host + "/team/app:1"

	// Mappings are tried in order; the first that has the image wins.
	got, err := Pull(ctx, ref, anon(), WithRegistryMap(map[string][]string{origin.host: {first.host, second.host}}))
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, got) != digestOf(t, onSecond) {
		t.Error("expected the image from the second mapped registry")
	}
	if first.count(http.MethodGet, "/manifests/") == 0 {
		t.Error("the first mapped registry was not tried")
	}

	// No mapping has it: fall back to the origin...
	got, err = Pull(ctx, ref, anon(), WithRegistryMap(map[string][]string{origin.host: {first.host}}))
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, got) != digestOf(t, onOrigin) {
		t.Error("expected the fallback to the origin registry")
	}

	// ...unless fallback is off, and then the error names what was tried.
	origin.reset()
	_, err = Pull(ctx, ref, anon(), WithRegistryMap(map[string][]string{origin.host: {first.host}}), WithSkipDefaultRegistryFallback(true))
	if err == nil {
		t.Fatal("pull succeeded with fallback disabled")
	}
	if !strings.Contains(err.Error(), "mirror "+first.host) || origin.total() != 0 {
		t.Errorf("err = %v (origin saw %d requests), want the mirror named and the origin untouched", err, origin.total())
	}
}
