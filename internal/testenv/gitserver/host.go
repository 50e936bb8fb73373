package gitserver

import (
	"io"
	"log"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"testing"
)

// ServeOn starts a plain-HTTP smart git server like Serve's, listening on a free port of host
// (an IP address) instead of 127.0.0.1: pods of a test cluster reach the node address
// (kube.HostIP), not the host's loopback. It is closed at the test's end.
func ServeOn(t testing.TB, host string) *Server {
	t.Helper()
	root := t.TempDir()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("gittest: listen on %s: %v", host, err)
	}
	srv := httptest.NewUnstartedServer(backend(RequireGit(t), root))
	srv.Listener.Close()
	srv.Listener = l
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	return &Server{Root: root, URL: srv.URL, Host: l.Addr().String()}
}

// backend is git's http-backend as a CGI handler serving the bare repositories under root.
func backend(gitBin, root string) http.Handler {
	return &cgi.Handler{
		Path: gitBin,
		Args: []string{"http-backend"},
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "HOME=" + root},
		// "Not a git repository" for a missing repository is an expected answer, not noise.
		Stderr: io.Discard,
	}
}
