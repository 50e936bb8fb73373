package integration

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kilnbuild/kiln/internal/testenv"
)

// registryPod returns a pod running the executor on ctx with the usual flags plus args.
func registryPod(t *testing.T, ctx string, args ...string) testenv.Pod {
	t.Helper()
	return testenv.Pod{
		Executor: testenv.BuildExecutor(t),
		Context:  ctx,
		Args:     append([]string{"--force", "--context", "dir:///workspace", "--log-format", "text"}, args...),
	}
}

// runPodWant runs p and fails the test unless the executor exits with want (0) or, for
// want != 0, with any non-zero code.
func runPodWant(t *testing.T, p testenv.Pod, wantOK bool) testenv.PodResult {
	t.Helper()
	res := testenv.RunPod(t, p)
	if (res.ExitCode == 0) != wantOK {
		t.Fatalf("executor exit code %d, want success=%v\nstdout:\n%s\nstderr:\n%s", res.ExitCode, wantOK, res.Stdout, res.Stderr)
	}
	return res
}

// notPushed fails the test when ref exists in reg.
func notPushed(t *testing.T, reg *testenv.Registry, ref string) {
	t.Helper()
	if _, err := testenv.TryConfig(reg, ref); err == nil {
		t.Errorf("%s was pushed, but the build failed", ref)
	}
}

// noStepRan fails the test when the log shows a build step ([1/N] ...) or the marker a RUN
// would write exists in the pod root.
func noStepRan(t *testing.T, res testenv.PodResult, marker string) {
	t.Helper()
	if strings.Contains(res.Stderr, "[1/") || strings.Contains(res.Stdout, "[1/") {
		t.Errorf("a build step ran before the failure:\n%s", res.Stderr)
	}
	if _, err := os.Lstat(filepath.Join(res.Root, marker)); err == nil {
		t.Errorf("%s exists in the pod root: a RUN executed", marker)
	}
}

// faultProxy is a reverse proxy in front of a real registry that answers chosen requests
// itself (to inject failures) and counts the requests it saw.
type faultProxy struct {
	*httptest.Server
	// Addr is the proxy's host:port, usable in references instead of the registry's.
	Addr string

	mu     sync.Mutex
	seen   map[string]int // "METHOD path" -> count
	faults []*fault
}

// fault answers the first Times requests matching Method and a path containing PathPart with
// Status and a registry-style error carrying Message.
type fault struct {
	Method, PathPart string
	Times            int
	Status           int
	Message          string
}

// startFaultProxy proxies to reg over plain HTTP; tls, if set, makes the proxy serve HTTPS
// with that configuration.
func startFaultProxy(t *testing.T, reg *testenv.Registry, tlsCfg *tls.Config) *faultProxy {
	t.Helper()
	target := &url.URL{Scheme: "http", Host: reg.Addr}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ErrorLog = log.New(io.Discard, "", 0) // clients cancelling after an injected failure
	inner := proxy.Director
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	proxy.Director = func(r *http.Request) {
		inner(r)
		// The registry builds upload Locations from Host (kept by the proxy) and this header.
		r.Header.Set("X-Forwarded-Proto", scheme)
	}
	fp := &faultProxy{seen: map[string]int{}}
	fp.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := fp.record(r); f != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(f.Status)
			fmt.Fprintf(w, `{"errors":[{"code":"UNAVAILABLE","message":%q}]}`, f.Message)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	fp.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point of some tests
	if tlsCfg != nil {
		fp.TLS = tlsCfg
		fp.StartTLS()
	} else {
		fp.Start()
	}
	t.Cleanup(fp.Close)
	fp.Addr = fp.Listener.Addr().String()
	return fp
}

// record counts r and returns the fault to answer it with, if any is left.
func (fp *faultProxy) record(r *http.Request) *fault {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.seen[r.Method+" "+r.URL.Path]++
	for _, f := range fp.faults {
		if f.Times > 0 && r.Method == f.Method && strings.Contains(r.URL.Path, f.PathPart) {
			f.Times--
			return f
		}
	}
	return nil
}

// inject replaces the faults and forgets the requests seen so far.
func (fp *faultProxy) inject(faults ...fault) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.seen = map[string]int{}
	fp.faults = nil
	for _, f := range faults {
		fp.faults = append(fp.faults, &f)
	}
}

// count returns how many requests with method had a path containing pathPart.
func (fp *faultProxy) count(method, pathPart string) int {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	n := 0
	for k, c := range fp.seen {
		m, p, _ := strings.Cut(k, " ")
		if m == method && strings.Contains(p, pathPart) {
			n += c
		}
	}
	return n
}
