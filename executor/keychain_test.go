package executor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

func TestDockerConfigKeychain(t *testing.T) {
	dir := t.TempDir()
	cfg := `{"auths":{"reg.example:5000":{"username":"u","password":"p"},"https://index.docker.io/v1/":{"username":"hub","password":"h"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// The process's own DOCKER_CONFIG must not matter.
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	user := func(kc authn.Keychain, ref string) string {
		t.Helper()
		r, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		a, err := kc.Resolve(r.Context())
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		c, err := a.Authorization()
		if err != nil {
			t.Fatal(err)
		}
		return c.Username
	}
	for _, kc := range []authn.Keychain{DockerConfigKeychain(dir), DockerConfigKeychain(filepath.Join(dir, "config.json"))} {
		for ref, want := range map[string]string{"reg.example:5000/team/app:1": "u", "busybox": "hub", "ghcr.io/x/y": ""} {
			if got := user(kc, ref); got != want {
				t.Errorf("%s: user %q, want %q", ref, got, want)
			}
		}
	}
	if got := user(DockerConfigKeychain(t.TempDir()), "reg.example:5000/a"); got != "" {
		t.Errorf("no config.json: user %q, want anonymous", got)
	}
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "config.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, _ := name.NewRepository("reg.example:5000/a")
	if _, err := DockerConfigKeychain(bad).Resolve(r); err == nil || !strings.Contains(err.Error(), filepath.Join(bad, "config.json")) {
		t.Errorf("malformed config.json: err = %v, want it named", err)
	}
}
