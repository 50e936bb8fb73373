package integration

import (
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/testenv"
)

// breakProxy is a reverse proxy in front of a registry that breaks blob uploads the way a
// network does: it resets the connection (TCP RST) after part of an upload's body went through,
// or slows uploads down. It keeps the ordered list of the requests it answered.
type breakProxy struct {
	*httptest.Server
	Addr string

	mu       sync.Mutex
	resets   int   // uploads still to reset
	resetAt  int64 // after this many bytes of their body
	throttle int64 // bytes per second for upload bodies beyond 1 MiB (0: no limit)
	requests []proxiedRequest
}

// proxiedRequest is one request the proxy answered (or broke: Status 0).
type proxiedRequest struct {
	Method, Path, Query string
	Status              int
}

func startBreakProxy(t *testing.T, reg *testenv.Registry) *breakProxy {
	t.Helper()
	target := &url.URL{Scheme: "http", Host: reg.Addr}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	inner := rp.Director
	rp.Director = func(r *http.Request) {
		inner(r)
		r.Header.Set("X-Forwarded-Proto", "http")
	}
	bp := &breakProxy{}
	bp.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if bp.upload(r) {
			if n := bp.takeReset(); n > 0 {
				bp.reset(w, r, n)
				return
			}
			if bp.rate() > 0 {
				r.Body = &slowReader{r: r.Body, rate: bp.rate, free: 1 << 20}
			}
		}
		rec := &statusRecorder{ResponseWriter: w}
		rp.ServeHTTP(rec, r)
		bp.record(r, rec.status)
	}))
	bp.Config.ErrorLog = log.New(io.Discard, "", 0)
	bp.Start()
	t.Cleanup(bp.Close)
	bp.Addr = bp.Listener.Addr().String()
	return bp
}

// upload reports whether r carries blob data (a PATCH, or a PUT with a body).
func (bp *breakProxy) upload(r *http.Request) bool {
	return strings.Contains(r.URL.Path, "/blobs/uploads/") &&
		(r.Method == http.MethodPatch || (r.Method == http.MethodPut && r.ContentLength != 0))
}

// resetUploads makes the next n uploads fail with a connection reset after after bytes.
func (bp *breakProxy) resetUploads(n int, after int64) {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	bp.resets, bp.resetAt = n, after
}

// slowUploads limits upload bodies to rate bytes per second after their first MiB.
func (bp *breakProxy) slowUploads(rate int64) {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	bp.throttle = rate
}

func (bp *breakProxy) takeReset() int64 {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	if bp.resets == 0 {
		return 0
	}
	bp.resets--
	return bp.resetAt
}

func (bp *breakProxy) rate() int64 {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	return bp.throttle
}

// reset reads n bytes of r's body, then closes the connection with a TCP RST.
func (bp *breakProxy) reset(w http.ResponseWriter, r *http.Request, n int64) {
	_, _ = io.CopyN(io.Discard, r.Body, n)
	bp.record(r, 0)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // RST instead of FIN
	}
	conn.Close()
}

func (bp *breakProxy) record(r *http.Request, status int) {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	bp.requests = append(bp.requests, proxiedRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Status: status})
}

// log returns the requests answered so far and forgets them.
func (bp *breakProxy) log() []proxiedRequest {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	out := bp.requests
	bp.requests = nil
	return out
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// slowReader passes free bytes at once, then rate() bytes per second (no limit once rate()
// is 0, so that uploads in flight finish quickly when the test lifts the limit).
type slowReader struct {
	r    io.ReadCloser
	rate func() int64
	free int64
}

func (s *slowReader) Read(p []byte) (int, error) {
	if rate := s.rate(); s.free <= 0 && rate > 0 {
		chunk := max(rate/20, 1)
		if int64(len(p)) > chunk {
			p = p[:chunk]
		}
		time.Sleep(time.Duration(int64(time.Second) * int64(len(p)) / rate))
	}
	n, err := s.r.Read(p)
	s.free -= int64(n)
	return n, err
}

func (s *slowReader) Close() error { return s.r.Close() }

// manifestLast checks that in reqs no blob upload finished (PUT ...?digest=) after the first
// manifest PUT, and that the manifest PUT happened: the tag moves only once every blob is there.
func manifestLast(t *testing.T, reqs []proxiedRequest) {
	t.Helper()
	manifestAt := -1
	for i, r := range reqs {
		if r.Method == http.MethodPut && strings.Contains(r.Path, "/manifests/") && manifestAt < 0 {
			manifestAt = i
		}
		if manifestAt >= 0 && r.Method == http.MethodPut && strings.Contains(r.Path, "/blobs/uploads/") {
			t.Errorf("blob upload %s finished after the manifest was pushed (request %d > %d)", r.Path, i, manifestAt)
		}
	}
	if manifestAt < 0 {
		t.Errorf("no manifest PUT among the %d requests", len(reqs))
	}
}

// uploadedDigests returns the digests of the blob uploads completed (201) in reqs.
func uploadedDigests(reqs []proxiedRequest) map[string]bool {
	out := map[string]bool{}
	for _, r := range reqs {
		if r.Method == http.MethodPut && strings.Contains(r.Path, "/blobs/uploads/") && r.Status == http.StatusCreated {
			if q, err := url.ParseQuery(r.Query); err == nil && q.Get("digest") != "" {
				out[q.Get("digest")] = true
			}
		}
	}
	return out
}
