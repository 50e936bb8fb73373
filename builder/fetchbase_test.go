package builder

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/kilnbuild/kiln/cache"
	"github.com/kilnbuild/kiln/internal/testenv"
	"github.com/kilnbuild/kiln/registry"
)

// basicKeychain answers every registry with one user and password.
type basicKeychain struct{ user, password string }

func (k basicKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return &authn.Basic{Username: k.user, Password: k.password}, nil
}

// TestPullBaseFallsBackToTheCache resolves a base image through the base image cache against
// a real registry with auth: a refused login (401) is an error even with a cached resolution;
// a registry that is gone is not, and the cached resolution is used with a warning naming its
// time; a digest reference needs no registry at all.
func TestPullBaseFallsBackToTheCache(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Auth: true})
	tag := testenv.PushBusybox(t, reg, "base/busybox:1")
	var mu sync.Mutex
	var warnings []string
	newBuild := func(kc authn.Keychain) *build {
		b := &build{o: defaults()}
		b.o.baseCache = cache.NewBaseCache(t.TempDir())
		b.o.pull = []registry.Option{registry.WithInsecure(reg.Addr), registry.WithKeychain(kc), registry.WithRetries(0)}
		b.o.reporter = ReporterFunc(func(e Event) {
			if e.Kind == EventWarning {
				mu.Lock()
				warnings = append(warnings, e.Message)
				mu.Unlock()
			}
		})
		return b
	}
	ctx := context.Background()
	plat := v1.Platform{OS: "linux", Architecture: "amd64"}
	b := newBuild(basicKeychain{reg.User, reg.Password})
	img, err := b.pullBase(ctx, tag, plat)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	layers, _ := b.o.baseCache.Image(img).Layers()
	for _, l := range layers { // as the build's unpacking does: fills the layer cache
		if _, err := drain(l); err != nil {
			t.Fatal(err)
		}
	}

	denied := *b
	denied.o.pull = append(append([]registry.Option{}, b.o.pull...), registry.WithKeychain(basicKeychain{reg.User, "wrong"}))
	if _, err := denied.pullBase(ctx, tag, plat); err == nil {
		t.Fatal("a refused login fell back to the cache")
	}

	if err := reg.Kill(); err != nil {
		t.Fatal(err)
	}
	img, err = b.pullBase(ctx, tag, plat)
	if err != nil {
		t.Fatalf("registry gone, cached resolution not used: %v", err)
	}
	if got, _ := img.Digest(); got != want {
		t.Fatalf("cached image %s, want %s", got, want)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "cached resolution from") || !strings.Contains(warnings[0], tag) {
		t.Errorf("warnings %q, want one naming %s and the cached resolution's time", warnings, tag)
	}
	ls, _ := b.o.baseCache.Image(img).Layers()
	if _, err := drain(ls[0]); err != nil {
		t.Errorf("reading the cached layer offline: %v", err)
	}
	if _, err := b.pullBase(ctx, reg.Ref("base/busybox:2"), plat); err == nil {
		t.Error("an uncached tag resolved with the registry gone")
	}

	warnings = nil
	ref := reg.Addr + "/base/busybox@" + want.String()
	if _, err := b.pullBase(ctx, ref, plat); err != nil || len(warnings) != 0 {
		t.Errorf("digest reference from the cache: %v, warnings %q (want none)", err, warnings)
	}
}

func TestUnreachable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &net.AddrError{Err: "x"}}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{syscall.ECONNREFUSED, true},
		{refused, true},
		{&net.DNSError{Err: "no such host", Name: "r.example", IsNotFound: true}, true},
		{&transport.Error{StatusCode: 401}, false},
		{&transport.Error{StatusCode: 404}, false},
		{errors.Join(&transport.Error{StatusCode: 404}, syscall.ECONNREFUSED), false},
		{context.Canceled, false},
		{io.ErrUnexpectedEOF, false},
		{&net.OpError{Op: "remote error", Err: errors.New("tls: bad certificate")}, false},
	} {
		if got := unreachable(&registry.Error{Op: "pull", Ref: "x", Err: tc.err}); got != tc.want {
			t.Errorf("unreachable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
