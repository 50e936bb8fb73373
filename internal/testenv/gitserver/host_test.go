package gitserver

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeOn serves a repository on an address other than loopback (when the machine has
// one) and clones it from there with the git CLI over plain HTTP.
func TestServeOn(t *testing.T) {
	host := "127.0.0.1"
	if ip := nonLoopbackIPv4(); ip != "" {
		host = ip
	}
	srv := ServeOn(t, host)
	if !strings.HasPrefix(srv.Host, host+":") || srv.URL != "http://"+srv.Host {
		t.Fatalf("ServeOn(%s): host %q, URL %q", host, srv.Host, srv.URL)
	}
	work := NewRepo(t)
	sha := Commit(t, work, "first", map[string]string{"hello.txt": "hi\n"})
	srv.Publish(t, work, "app.git")

	dst := filepath.Join(t.TempDir(), "clone")
	// Git allows only file:// (GIT_ALLOW_PROTOCOL): clone with the CLI directly, over http.
	clone := exec.Command(RequireGit(t), "clone", "-q", srv.URL+"/app.git", dst)
	clone.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0")
	if out, err := clone.CombinedOutput(); err != nil {
		t.Fatalf("git clone %s/app.git: %v\n%s", srv.URL, err, out)
	}
	if got := Git(t, dst, "rev-parse", "HEAD"); got != sha {
		t.Errorf("clone from %s is at %s, want %s", srv.URL, got, sha)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "hello.txt")); err != nil || string(b) != "hi\n" {
		t.Errorf("hello.txt in the clone: %q (%v)", b, err)
	}
}

// nonLoopbackIPv4 returns an IPv4 address of this machine other than loopback, or "".
func nonLoopbackIPv4() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && n.IP.IsGlobalUnicast() {
			return n.IP.String()
		}
	}
	return ""
}
