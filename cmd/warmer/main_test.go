package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/internal/testenv"
)

// TestWarmerCommand runs the command against a registry with auth, its credentials in a
// config.json found through DOCKER_CONFIG as the executor finds them: images from --image and
// from a Dockerfile's FROM lines (ARG before FROM set by --build-arg), exit 1 naming an unknown
// image while the others are cached, exit 2 on a bad command line.
func TestWarmerCommand(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Auth: true})
	one := testenv.PushBusybox(t, reg, "base/one:1")
	small := t.TempDir()
	os.WriteFile(filepath.Join(small, "hello.txt"), []byte("a second, different image\n"), 0o644)
	testenv.PushImageFromDir(t, reg, "base/two:1", small, v1.Config{})
	dockerDir := filepath.Dir(reg.DockerConfig(t))
	env := func(k string) (string, bool) {
		if k == "DOCKER_CONFIG" {
			return dockerDir, true
		}
		return "", false
	}
	cacheDir := t.TempDir()
	df := filepath.Join(t.TempDir(), "Dockerfile")
	os.WriteFile(df, []byte("ARG REPO\nFROM "+reg.Addr+"/base/${REPO}:1 AS a\nFROM a\nFROM scratch\n"), 0o644)
	warm := func(args ...string) (int, string) {
		var stderr bytes.Buffer
		code := run(append([]string{"--cache-dir", cacheDir, "--log-format", "text", "--insecure-registry", reg.Addr}, args...), &stderr, env)
		return code, stderr.String()
	}

	code, log := warm("--image", one, "--dockerfile", df, "--build-arg", "REPO=two")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, log)
	}
	if !strings.Contains(log, "Cached "+one) || !strings.Contains(log, "Cached "+reg.Ref("base/two:1")) ||
		!strings.Contains(log, "2 images cached") {
		t.Errorf("log does not show both images cached:\n%s", log)
	}
	code, log = warm("-i", one)
	if code != 0 || !strings.Contains(log, "already cached") {
		t.Errorf("second warm: exit %d, want 0 and \"already cached\":\n%s", code, log)
	}
	code, log = warm("-i", one, "--force")
	if code != 0 || !strings.Contains(log, "Cached "+one) {
		t.Errorf("forced warm: exit %d, want a new download:\n%s", code, log)
	}
	missing := reg.Ref("nope/missing:1")
	code, log = warm("-i", missing, "-i", one)
	t.Logf("a warm with an unknown image:\n%s", log)
	if code != 1 || !strings.Contains(log, missing) || !strings.Contains(log, "1 of 2 images could not be cached") {
		t.Errorf("unknown image: exit %d, want 1 and an error naming %s:\n%s", code, missing, log)
	}
	// Without the credentials the registry refuses, and the error says so for that image.
	var stderr bytes.Buffer
	code = run([]string{"--cache-dir", t.TempDir(), "--log-format", "text", "-i", one},
		&stderr, func(string) (string, bool) { return "", false })
	if code != 1 || !strings.Contains(stderr.String(), one) {
		t.Errorf("no credentials: exit %d, want 1 naming %s:\n%s", code, one, stderr.String())
	}
	for _, args := range [][]string{{}, {"-i", one, "--log-format", "xml"}, {"--bogus"}, {"-i", one, "stray"}} {
		if code, log := warm(args...); code != 2 {
			t.Errorf("%q: exit %d, want 2:\n%s", args, code, log)
		}
	}
	if code, log := warm("--dockerfile", filepath.Join(t.TempDir(), "none")); code != 2 || !strings.Contains(log, "--dockerfile") {
		t.Errorf("missing Dockerfile: exit %d, want 2 naming --dockerfile:\n%s", code, log)
	}

	// --dockerfile may be a URL, as in Kaniko.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/Dockerfile" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("FROM " + one + "\n"))
	}))
	defer srv.Close()
	if code, log := warm("--dockerfile", srv.URL+"/Dockerfile"); code != 0 || !strings.Contains(log, one) {
		t.Errorf("Dockerfile from a URL: exit %d, want 0 and %s warmed:\n%s", code, one, log)
	}
	if code, log := warm("--dockerfile", srv.URL+"/missing"); code != 2 || !strings.Contains(log, "404") {
		t.Errorf("Dockerfile URL answering 404: exit %d, want 2 saying so:\n%s", code, log)
	}
}
