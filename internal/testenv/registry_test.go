package testenv

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestRegistryKinds(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts RegistryOptions
	}{
		{"plain", RegistryOptions{}},
		{"auth", RegistryOptions{Auth: true}},
		{"tls", RegistryOptions{TLS: true}},
		{"auth+tls", RegistryOptions{Auth: true, TLS: true}},
		{"host", RegistryOptions{Host: "HOST"}},
		{"host+auth+tls", RegistryOptions{Host: "HOST", Auth: true, TLS: true}},
	} {
		if tc.opts.Host == "HOST" {
			tc.opts.Host = nonLoopbackIP(t)
		}
		t.Run(tc.name, func(t *testing.T) {
			var pid int
			t.Run("serve", func(t *testing.T) {
				r := StartRegistry(t, tc.opts)
				pid = r.cmd.Process.Pid
				if tc.opts.Host != "" && !strings.HasPrefix(r.Addr, tc.opts.Host+":") {
					t.Errorf("registry on %s, want host %s", r.Addr, tc.opts.Host)
				}
				checkRegistry(t, r, tc.opts)
			})
			// Cleanup of the subtest must have stopped (and reaped) the registry.
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("registry pid %d still exists after cleanup (kill 0: %v)", pid, err)
			}
		})
	}
}

// nonLoopbackIP returns an IPv4 address of this machine other than loopback
// (a pod-reachable address in internal/testenv/kube's terms).
func nonLoopbackIP(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP.String()
		}
	}
	t.Skip("testenv: this machine has no IPv4 address but loopback")
	return ""
}

// checkRegistry pushes a random image and reads it back three ways.
func checkRegistry(t *testing.T, r *Registry, o RegistryOptions) {
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref := r.Ref("rand/img:v1")
	if err := pushImage(r, ref, img); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	n, _ := name.ParseReference(ref, r.nameOptions()...)
	desc, err := remote.Get(n, r.RemoteOptions()...)
	if err != nil {
		t.Fatalf("pull back: %v", err)
	}
	if desc.Digest != want {
		t.Errorf("pulled digest %s, pushed %s", desc.Digest, want)
	}
	if got := SkopeoInspect(t, r, ref)["Digest"]; got != want.String() {
		t.Errorf("skopeo digest %v, want %s", got, want)
	}

	// Anonymous access is refused exactly when Auth is on.
	anon := []remote.Option{remote.WithTransport(r.transport())}
	_, err = remote.Get(n, anon...)
	if o.Auth && err == nil {
		t.Error("anonymous pull succeeded on an htpasswd registry")
	}
	if !o.Auth && err != nil {
		t.Errorf("anonymous pull failed on an open registry: %v", err)
	}
	// Without the CA, a TLS registry must not be trusted.
	if o.TLS {
		if _, err := remote.Get(n, remote.WithAuth(&authn.Basic{Username: r.User, Password: r.Password})); err == nil {
			t.Error("TLS registry trusted without its CA")
		}
		if r.CAFile == "" || r.CertDir == "" {
			t.Errorf("CAFile %q / CertDir %q not set", r.CAFile, r.CertDir)
		}
	}

	// The docker config works through the standard keychain.
	cfgPath := r.DockerConfig(t)
	checkDockerConfig(t, r, cfgPath)
	t.Setenv("DOCKER_CONFIG", filepath.Dir(cfgPath))
	if _, err := remote.Get(n, remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithTransport(r.transport())); err != nil {
		t.Errorf("pull with DockerConfig through the default keychain: %v", err)
	}
}

// checkDockerConfig asserts the kubectl-shaped config.json.
func checkDockerConfig(t *testing.T, r *Registry, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Auths map[string]map[string]string `json:"auths"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("config.json: %v\n%s", err, b)
	}
	if r.User == "" {
		if len(cfg.Auths) != 0 {
			t.Errorf("open registry config has auths: %s", b)
		}
		return
	}
	e := cfg.Auths[r.Addr]
	dec, _ := base64.StdEncoding.DecodeString(e["auth"])
	if e["username"] != "kiln" || e["password"] != r.Password || string(dec) != "kiln:"+r.Password {
		t.Errorf("config.json entry for %s = %v", r.Addr, e)
	}
}
