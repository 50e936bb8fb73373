package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRelocateKanikoDir(t *testing.T) {
	from := filepath.Join(t.TempDir(), "kaniko")
	to := filepath.Join(t.TempDir(), "elsewhere")
	for p, content := range map[string]string{".docker/config.json": `{"auths":{}}`, "ssl/certs/ca.crt": "CA", "executor": "bin"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(from, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(from, p), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("DOCKER_CONFIG", from+"/.docker/")
	t.Setenv("SSL_CERT_DIR", "/etc/other/certs")
	set := map[string]string{}
	if err := relocateKanikoDir(from, to, func(k, v string) error { set[k] = v; return nil }); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(to, ".docker/config.json")); err != nil || string(b) != `{"auths":{}}` {
		t.Errorf("config.json not carried over: %q %v", b, err)
	}
	if set["DOCKER_CONFIG"] != to+"/.docker/" {
		t.Errorf("DOCKER_CONFIG = %q, want it to follow the directory", set["DOCKER_CONFIG"])
	}
	if _, ok := set["SSL_CERT_DIR"]; ok {
		t.Errorf("SSL_CERT_DIR outside the kaniko dir must stay: %v", set)
	}
	if err := relocateKanikoDir(to, to, nil); err != nil {
		t.Errorf("same dir: %v", err)
	}
}
