package registry

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestPullByTagAndDigest(t *testing.T) {
	reg := newTestRegistry(t)
	img := randomImage(t, 2)
	want := digestOf(t, img)
	seed(t, reg.host+"/app:1", img)

	for _, ref := range []string{reg.host + "/app:1", reg.host + "/app@" + want.String()} {
		got, err := Pull(context.Background(), ref, anon())
		if err != nil {
			t.Fatalf("Pull(%s): %v", ref, err)
		}
		if d := digestOf(t, got); d != want {
			t.Errorf("Pull(%s) digest = %s, want %s", ref, d, want)
		}
	}
}

func TestPullIsLazy(t *testing.T) {
	reg := newTestRegistry(t)
	seed(t, reg.host+"/app:1", randomImage(t, 3))
	reg.reset()
	img, err := Pull(context.Background(), reg.host+"/app:1", anon())
	if err != nil {
		t.Fatal(err)
	}
	if n := reg.count(http.MethodGet, "/blobs/"); n > 1 { // the config at most
		t.Errorf("Pull fetched %d blobs before any layer was read", n)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
}

func TestPullPicksPlatformFromIndex(t *testing.T) {
	reg := newTestRegistry(t)
	amd, arm := randomImage(t, 1), randomImage(t, 1)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	ref, err := name.ParseReference(reg.host + "/multi:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		p    v1.Platform
		want v1.Image
	}{
		{v1.Platform{OS: "linux", Architecture: "amd64"}, amd},
		{v1.Platform{OS: "linux", Architecture: "arm64"}, arm},
	} {
		got, err := Pull(context.Background(), ref.String(), anon(), WithPlatform(tc.p))
		if err != nil {
			t.Fatalf("Pull for %s: %v", tc.p, err)
		}
		if d, w := digestOf(t, got), digestOf(t, tc.want); d != w {
			t.Errorf("Pull for %s = %s, want %s", tc.p, d, w)
		}
	}

	_, err = Pull(context.Background(), ref.String(), anon(), WithPlatform(v1.Platform{OS: "linux", Architecture: "s390x"}))
	if err == nil || !strings.Contains(err.Error(), "s390x") {
		t.Errorf("Pull for a missing platform: err = %v, want one naming s390x", err)
	}
}

func TestPullErrorNamesReferenceAndAnswer(t *testing.T) {
	reg := newTestRegistry(t)
	seed(t, reg.host+"/app:1", randomImage(t, 1))
	ref := reg.host + "/app:nope"
	_, err := Pull(context.Background(), ref, anon())
	if err == nil {
		t.Fatal("Pull of a missing tag succeeded")
	}
	want := "pull " + ref + ": MANIFEST_UNKNOWN: "
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error = %q, want prefix %q", err, want)
	}
	if _, err := Pull(context.Background(), "UPPER/Case::x", anon()); err == nil || !strings.Contains(err.Error(), "UPPER/Case::x") {
		t.Errorf("bad reference: err = %v, want one naming it", err)
	}
}

func TestPullRetriesServerErrors(t *testing.T) {
	reg := newTestRegistry(t)
	img := randomImage(t, 1)
	seed(t, reg.host+"/app:1", img)

	var failures atomic.Int32 // written by the server, read by the test
	fail := func(n int32) {
		failures.Store(0)
		reg.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
			if strings.Contains(r.URL.Path, "/manifests/") && failures.Load() < n {
				failures.Add(1)
				w.WriteHeader(http.StatusServiceUnavailable)
				return true
			}
			return false
		})
	}

	fail(2)
	got, err := Pull(context.Background(), reg.host+"/app:1", anon(), WithRetries(2), WithRetryDelay(time.Millisecond))
	if err != nil {
		t.Fatalf("Pull with 2 retries after 2 failures: %v", err)
	}
	if digestOf(t, got) != digestOf(t, img) || failures.Load() != 2 {
		t.Errorf("digest mismatch or %d injected failures seen, want 2", failures.Load())
	}

	fail(1)
	_, err = Pull(context.Background(), reg.host+"/app:1", anon(), WithRetries(0))
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("Pull without retries after a 503: err = %v, want the 503", err)
	}
}
