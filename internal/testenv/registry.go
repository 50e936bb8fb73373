package testenv

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// registryBinary is Debian's distribution v2 registry (package docker-registry).
const registryBinary = "/usr/bin/docker-registry"

// Registry is a running docker-registry bound to 127.0.0.1 (or RegistryOptions.Host).
type Registry struct {
	// Addr is "127.0.0.1:PORT" (or "HOST:PORT"), the host part of every reference.
	Addr string
	// CAFile is the PEM file of the CA that signed the server certificate (TLS only).
	CAFile string
	// CertDir holds the CA as ca.crt, the layout skopeo's --cert-dir and
	// containers' certs.d expect (TLS only).
	CertDir string
	// User and Password are the htpasswd credentials (Auth only).
	User, Password string
	// LogFile collects the registry's own output, for diagnosing failures.
	LogFile string

	tls    bool
	caPool *x509.CertPool
	cmd    *exec.Cmd
}

// RegistryOptions selects how StartRegistry protects the registry.
type RegistryOptions struct {
	// Auth requires htpasswd basic auth for user "kiln" with a random password.
	Auth bool
	// TLS serves HTTPS with a server certificate for 127.0.0.1 and localhost,
	// signed by a CA made for this registry.
	TLS bool
	// Host is the IP address to bind instead of 127.0.0.1, e.g. the node
	// address of internal/testenv/kube, so that pods reach the registry. With
	// TLS the certificate names it too. Clients outside this package must
	// then treat a plain registry as insecure (name.Insecure, plain HTTP).
	Host string
}

// StartRegistry runs `docker-registry serve` on a free port of 127.0.0.1 (or o.Host),
// waits until /v2/ answers and stops it when the test ends. It skips the test
// only when the binary is not installed.
func StartRegistry(t testing.TB, o RegistryOptions) *Registry {
	t.Helper()
	if _, err := os.Stat(registryBinary); err != nil {
		t.Skipf("testenv: %s not installed (apt-get install docker-registry): %v", registryBinary, err)
	}
	dir := t.TempDir()
	host := o.Host
	if host == "" {
		host = "127.0.0.1"
	}
	r := &Registry{LogFile: filepath.Join(dir, "registry.log"), tls: o.TLS}
	var extra strings.Builder
	if o.Auth {
		r.User, r.Password = "kiln", randomHex(t, 12)
		htpasswd := filepath.Join(dir, "htpasswd")
		writeHtpasswd(t, htpasswd, r.User, r.Password)
		fmt.Fprintf(&extra, "auth:\n  htpasswd:\n    realm: kiln-test\n    path: %s\n", htpasswd)
	}
	var tlsBlock string
	if o.TLS {
		certs := makeServerCerts(t, dir, net.ParseIP(host))
		r.CAFile, r.CertDir, r.caPool = certs.caFile, certs.certDir, certs.pool
		tlsBlock = fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", certs.certFile, certs.keyFile)
	}
	// A port picked by listening on :0 can be taken by another process before
	// the registry binds it; the registry then exits and we try another one.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		r.Addr = freeAddr(t, host)
		cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: %s
%s%s`, filepath.Join(dir, "data"), r.Addr, randomHex(t, 16), tlsBlock, extra.String())
		cfgFile := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
			t.Fatalf("testenv: write registry config: %v", err)
		}
		lastErr = r.start(t, cfgFile)
		if lastErr == nil {
			return r
		}
	}
	t.Fatalf("testenv: start registry: %v", lastErr)
	return nil
}

// start runs the registry with cfgFile and registers its stop on cleanup.
func (r *Registry) start(t testing.TB, cfgFile string) error {
	log, err := os.OpenFile(r.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(registryBinary, "serve", cfgFile)
	cmd.Stdout, cmd.Stderr = log, log
	// The registry must not outlive a test process that dies without cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", registryBinary, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	client := r.pingClient()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			out, _ := os.ReadFile(r.LogFile)
			return fmt.Errorf("registry on %s exited early (%v); log %s:\n%s", r.Addr, err, r.LogFile, tail(out))
		default:
		}
		if r.ping(client) {
			r.cmd = cmd
			t.Cleanup(stop)
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	out, _ := os.ReadFile(r.LogFile)
	return fmt.Errorf("registry on %s did not answer /v2/ within 20s; log %s:\n%s", r.Addr, r.LogFile, tail(out))
}

// ping reports whether /v2/ answers as a registry does (200, or 401 with auth).
func (r *Registry) ping(c *http.Client) bool {
	resp, err := c.Get(r.baseURL() + "/v2/")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized
}

// baseURL is the scheme and host of the registry API.
func (r *Registry) baseURL() string {
	if r.tls {
		return "https://" + r.Addr
	}
	return "http://" + r.Addr
}

// Ref returns the reference of repoTag (e.g. "app:v1") in this registry.
func (r *Registry) Ref(repoTag string) string {
	return r.Addr + "/" + repoTag
}

// freeAddr returns an address of host whose port was free a moment ago.
func freeAddr(t testing.TB, host string) string {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("testenv: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// randomHex returns n random bytes as hex.
func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("testenv: random: %v", err)
	}
	return hex.EncodeToString(b)
}

// tail keeps the last 4 KiB of a log for error messages.
func tail(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// requireTool skips the test when a command-line tool is not installed.
func requireTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("testenv: %s is not installed (apt-get install %s): %v", name, pkg, err)
	}
	return p
}
