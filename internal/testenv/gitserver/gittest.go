// Package gittest serves real git repositories over smart HTTP for tests, with the git
// binary's http-backend behind an httptest server, and builds repositories with the git CLI.
package gitserver

import (
	"io"
	"log"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Server serves the bare repositories under Root.
type Server struct {
	// Root holds the bare repositories, e.g. Root/app.git.
	Root string
	// Host is the server's host:port, as a git:// context names it.
	Host string
	// URL is the server's base URL (https://Host or http://Host).
	URL string
}

// RequireGit returns the git binary's path, or skips the test when the machine has none.
func RequireGit(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("git")
	if err != nil {
		t.Skip("gittest: this machine has no git binary (apt-get install git)")
	}
	return p
}

// Serve starts a smart-HTTP git server (TLS with a self-signed certificate if tls) for the
// bare repositories under a fresh root, closed at the test's end.
func Serve(t testing.TB, tls bool) *Server {
	t.Helper()
	gitBin := RequireGit(t)
	root := t.TempDir()
	h := &cgi.Handler{
		Path: gitBin,
		Args: []string{"http-backend"},
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "HOME=" + root},
		// "Not a git repository" for a missing repository is an expected answer, not noise.
		Stderr: io.Discard,
	}
	srv := httptest.NewUnstartedServer(h)
	// Clients that refuse the self-signed certificate are expected; keep the log quiet.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return &Server{Root: root, URL: srv.URL, Host: strings.TrimPrefix(strings.TrimPrefix(srv.URL, "https://"), "http://")}
}

// Publish pushes every branch and tag of the work repository dir to a bare repository
// Root/name (created if needed) and returns its path.
func (s *Server) Publish(t testing.TB, dir, name string) string {
	t.Helper()
	bare := filepath.Join(s.Root, name)
	if _, err := os.Stat(bare); err != nil {
		Git(t, s.Root, "init", "-q", "--bare", name)
	}
	Git(t, dir, "push", "-q", "--force", bare, "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*")
	// The bare repository's default branch is the work repository's current one.
	Git(t, bare, "symbolic-ref", "HEAD", Git(t, dir, "symbolic-ref", "HEAD"))
	return bare
}

// NewRepo makes a work repository with branch main and returns its directory.
func NewRepo(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	Git(t, dir, "init", "-q", "-b", "main")
	return dir
}

// Commit writes files (path -> content) into the work repository dir, commits them with
// message and returns the commit's SHA.
func Commit(t testing.TB, dir, message string, files map[string]string) string {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	Git(t, dir, "add", "-A")
	Git(t, dir, "commit", "-q", "-m", message)
	return Git(t, dir, "rev-parse", "HEAD")
}

// Git runs git in dir with a fixed identity and no user or system config, and returns its
// trimmed output; a failure fails the test.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(RequireGit(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=kiln", "GIT_AUTHOR_EMAIL=kiln@example.com",
		"GIT_COMMITTER_NAME=kiln", "GIT_COMMITTER_EMAIL=kiln@example.com",
		"GIT_ALLOW_PROTOCOL=file")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gittest: git %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return strings.TrimSpace(string(out))
}
