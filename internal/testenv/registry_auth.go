package testenv

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"
)

// writeHtpasswd writes a one-user htpasswd file; distribution accepts bcrypt only.
func writeHtpasswd(t testing.TB, path, user, password string) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost) // verified on every request: keep the test registry fast
	if err != nil {
		t.Fatalf("testenv: bcrypt: %v", err)
	}
	writeFile(t, path, fmt.Appendf(nil, "%s:%s\n", user, hash), 0o600)
}

// dockerConfig is the file `kubectl create secret docker-registry` writes.
type dockerConfig struct {
	Auths map[string]dockerAuth `json:"auths"`
}

// dockerAuth is one registry's entry in a docker config.json.
type dockerAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Auth     string `json:"auth"`
}

// DockerConfig writes a docker config.json holding this registry's
// credentials, as `kubectl create secret docker-registry` writes it, and
// returns its path. Without Auth the file has an empty "auths" map.
func (r *Registry) DockerConfig(t testing.TB) string {
	t.Helper()
	cfg := dockerConfig{Auths: map[string]dockerAuth{}}
	if r.User != "" {
		cfg.Auths[r.Addr] = dockerAuth{
			Username: r.User,
			Password: r.Password,
			Auth:     base64.StdEncoding.EncodeToString([]byte(r.User + ":" + r.Password)),
		}
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("testenv: encode docker config: %v", err)
	}
	path := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, path, b, 0o600)
	return path
}

// RemoteOptions returns go-containerregistry options that authenticate to
// this registry and trust its CA, for checking results in-process.
func (r *Registry) RemoteOptions() []remote.Option {
	var auth authn.Authenticator = authn.Anonymous
	if r.User != "" {
		auth = &authn.Basic{Username: r.User, Password: r.Password}
	}
	return []remote.Option{remote.WithAuth(auth), remote.WithTransport(r.transport())}
}

// transport is an HTTP transport that trusts the registry's CA (if any).
func (r *Registry) transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if r.caPool != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: r.caPool, MinVersion: tls.VersionTLS12}
	}
	return tr
}

// pingClient is the client StartRegistry uses to wait for /v2/.
func (r *Registry) pingClient() *http.Client {
	return &http.Client{Transport: r.transport(), Timeout: 2 * time.Second}
}

// nameOptions are the reference options for this registry: plain HTTP is
// allowed when it does not serve TLS (go-containerregistry assumes it only for
// loopback and private addresses).
func (r *Registry) nameOptions() []name.Option {
	if r.tls {
		return nil
	}
	return []name.Option{name.Insecure}
}
