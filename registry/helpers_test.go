package registry

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// testRegistry is an in-memory registry that counts requests and can be told
// to answer some of them itself.
type testRegistry struct {
	*httptest.Server
	host string

	mu        sync.Mutex
	requests  []string                                          // "METHOD /path"
	intercept func(w http.ResponseWriter, r *http.Request) bool // true: handled
}

func newTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	tr := &testRegistry{}
	tr.Server = httptest.NewServer(tr.handler(quietRegistry()))
	t.Cleanup(tr.Close)
	tr.host = strings.TrimPrefix(tr.URL, "http://")
	return tr
}

func (tr *testRegistry) handler(inner http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.mu.Lock()
		tr.requests = append(tr.requests, r.Method+" "+r.URL.Path)
		hook := tr.intercept
		tr.mu.Unlock()
		if hook != nil && hook(w, r) {
			return
		}
		inner.ServeHTTP(w, r)
	})
}

func (tr *testRegistry) setIntercept(f func(w http.ResponseWriter, r *http.Request) bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.intercept = f
}

// count returns how many requests matched method and contained pathPart.
func (tr *testRegistry) count(method, pathPart string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, r := range tr.requests {
		m, p, _ := strings.Cut(r, " ")
		if m == method && strings.Contains(p, pathPart) {
			n++
		}
	}
	return n
}

func (tr *testRegistry) reset() {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.requests = nil
}

func (tr *testRegistry) total() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.requests)
}

// quietRegistry is an in-memory registry that does not log every request.
func quietRegistry() http.Handler {
	return ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
}

// anon keeps tests away from the machine's docker config.
func anon() Option { return WithKeychain(authn.NewMultiKeychain()) }

func randomImage(t *testing.T, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(512, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digestOf(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// seed writes img at ref directly with go-containerregistry.
func seed(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}

// dialTo returns a transport that sends every connection to addr, so tests
// can give a loopback server a name go-containerregistry treats as remote
// (loopback hosts get plain-HTTP fallback automatically).
func dialTo(addr string) *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}
