package registry

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// blobCount is how many blobs (layers + config) img has.
func blobCount(t *testing.T, img v1.Image) int {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return len(ls) + 1
}

func TestPushTwoTagsUploadsBlobsOnce(t *testing.T) {
	reg := newTestRegistry(t)
	img := randomImage(t, 3)
	dests := []string{reg.host + "/app:1", reg.host + "/app:latest"}

	got, err := Push(context.Background(), img, dests, anon())
	if err != nil {
		t.Fatal(err)
	}
	if got != digestOf(t, img) {
		t.Errorf("Push returned %s, want %s", got, digestOf(t, img))
	}
	if n, want := reg.count(http.MethodPost, "/blobs/uploads/"), blobCount(t, img); n != want {
		t.Errorf("%d uploads started for %d blobs", n, want)
	}
	if n := reg.count(http.MethodPut, "/manifests/"); n != 2 {
		t.Errorf("%d manifest PUTs, want one per tag (2)", n)
	}
	for _, d := range dests {
		pulled, err := Pull(context.Background(), d, anon())
		if err != nil {
			t.Fatal(err)
		}
		if digestOf(t, pulled) != got {
			t.Errorf("%s resolves to %s, want %s", d, digestOf(t, pulled), got)
		}
	}
}

func TestPushSeveralRepositoriesAndRegistries(t *testing.T) {
	a, b := newTestRegistry(t), newTestRegistry(t)
	img := randomImage(t, 2)
	dests := []string{a.host + "/one:1", a.host + "/two:1", b.host + "/three", a.host + "/one:2"}
	if _, err := Push(context.Background(), img, dests, anon()); err != nil {
		t.Fatal(err)
	}
	for _, d := range append(dests, b.host+"/three:latest") {
		pulled, err := Pull(context.Background(), d, anon())
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		if digestOf(t, pulled) != digestOf(t, img) {
			t.Errorf("%s has the wrong image", d)
		}
	}
	// Each blob is started at most once per repository (two on a). The
	// in-memory registry shares blobs across repositories, so fewer is fine.
	if n, most := a.count(http.MethodPost, "/blobs/uploads/"), 2*blobCount(t, img); n > most || n == 0 {
		t.Errorf("registry a: %d uploads started, want 1..%d", n, most)
	}
}

func TestPushSkipsBlobsTheRegistryHas(t *testing.T) {
	reg := newTestRegistry(t)
	base := randomImage(t, 2)
	if _, err := Push(context.Background(), base, []string{reg.host + "/app:base"}, anon()); err != nil {
		t.Fatal(err)
	}
	extra := randomImage(t, 1)
	el, _ := extra.Layers()
	img, err := mutate.AppendLayers(base, el...)
	if err != nil {
		t.Fatal(err)
	}
	reg.reset()
	if _, err := Push(context.Background(), img, []string{reg.host + "/app:new"}, anon()); err != nil {
		t.Fatal(err)
	}
	// Only the new layer and the new config are uploaded.
	if n := reg.count(http.MethodPost, "/blobs/uploads/"); n != 2 {
		t.Errorf("%d uploads started, want 2 (new layer + config)", n)
	}
}

func TestPushReusesLayersPulledFromSameRegistry(t *testing.T) {
	reg := newTestRegistry(t)
	seed(t, reg.host+"/base:1", randomImage(t, 2))
	base, err := Pull(context.Background(), reg.host+"/base:1", anon())
	if err != nil {
		t.Fatal(err)
	}
	reg.reset()
	if _, err := Push(context.Background(), base, []string{reg.host + "/derived:1"}, anon()); err != nil {
		t.Fatal(err)
	}
	if n := reg.count(http.MethodPatch, "/blobs/uploads/"); n != 0 {
		t.Errorf("%d blob bodies streamed; pulled layers should be mounted or skipped", n)
	}
}

func TestPushBadDestinationPushesNothing(t *testing.T) {
	reg := newTestRegistry(t)
	img := randomImage(t, 1)
	for _, bad := range []string{"Bad Name::x", reg.host + "/app@" + digestOf(t, img).String()} {
		reg.reset()
		_, err := Push(context.Background(), img, []string{reg.host + "/app:1", bad}, anon())
		if err == nil {
			t.Fatalf("Push to %q succeeded", bad)
		}
		if !strings.Contains(err.Error(), bad) {
			t.Errorf("error %q does not name %q", err, bad)
		}
		if n := reg.total(); n != 0 {
			t.Errorf("%d requests reached the registry before validation failed", n)
		}
	}
	if _, err := Push(context.Background(), img, nil, anon()); err == nil {
		t.Error("Push with no destination succeeded")
	}
}

func TestPushReportsProgressAndClosesChannel(t *testing.T) {
	reg := newTestRegistry(t)
	img := randomImage(t, 2)
	ch := make(chan v1.Update, 1024)
	if _, err := Push(context.Background(), img, []string{reg.host + "/app:1"}, anon(), WithProgress(ch)); err != nil {
		t.Fatal(err)
	}
	var last v1.Update
	n := 0
	for u := range ch { // terminates only if Push closed the channel
		if u.Error != nil {
			t.Fatalf("progress error: %v", u.Error)
		}
		last, n = u, n+1
	}
	if n == 0 || last.Total == 0 || last.Complete != last.Total {
		t.Errorf("last of %d updates = %+v, want complete == total > 0", n, last)
	}
}

func TestPushIgnoresImmutableTagErrorsOnlyWhenAsked(t *testing.T) {
	reg := newTestRegistry(t)
	img := randomImage(t, 1)
	reg.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"errors":[{"code":"TAG_INVALID","message":"The image tag '1' already exists in the 'app' repository and cannot be overwritten because the repository is immutable."}]}`))
			return true
		}
		return false
	})
	_, err := Push(context.Background(), img, []string{reg.host + "/app:1"}, anon(), WithRetries(0))
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(err.Error(), "TAG_INVALID") {
		t.Fatalf("Push to an immutable tag: err = %v, want a *registry.Error with TAG_INVALID", err)
	}
	if _, err := Push(context.Background(), img, []string{reg.host + "/app:1"}, anon(), WithIgnoreImmutableTagErrors(true)); err != nil {
		t.Errorf("with WithIgnoreImmutableTagErrors: %v", err)
	}
}

func TestPushProgressCarriesErrorAndCloses(t *testing.T) {
	ch := make(chan v1.Update, 8)
	_, err := Push(context.Background(), randomImage(t, 1), []string{"Bad Name"}, anon(), WithProgress(ch))
	if err == nil {
		t.Fatal("bad destination accepted")
	}
	var last v1.Update
	for u := range ch { // terminates only if Push closed the channel
		last = u
	}
	if last.Error == nil || last.Error.Error() != err.Error() {
		t.Errorf("last update error = %v, want %v", last.Error, err)
	}
}
