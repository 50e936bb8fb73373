package executor

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/kilnbuild/kiln/registry"
)

// parseRegistryFlags parses args like the executor and maps them, with env
// as the only environment.
func parseRegistryFlags(t *testing.T, env map[string]string, args ...string) ([]registry.Option, []registry.Option, error) {
	t.Helper()
	var c Config
	fs := NewFlagSet(&c)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return c.RegistryOptions(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
}

func TestRegistryFlagErrorsNameTheFlag(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, []byte("not a cert"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--registry-certificate", "foo"}, nil, "--registry-certificate foo: must be host=path"},
		{[]string{"--registry-certificate", "=" + ca}, nil, "must be host=path"},
		{[]string{"--registry-certificate", "reg.example=" + dir + "/missing.pem"}, nil, "--registry-certificate reg.example=" + dir + "/missing.pem: stat"},
		{[]string{"--registry-client-cert", "reg.example=" + ca}, nil, "--registry-client-cert reg.example=" + ca + ": must be host=certfile,keyfile"},
		{[]string{"--registry-client-cert", "reg.example=" + ca + "," + ca}, nil, "--registry-client-cert reg.example=" + ca + "," + ca + ":"},
		{[]string{"--registry-map", "index.docker.io"}, nil, "--registry-map index.docker.io: must be original=replacement"},
		{[]string{"--registry-map", "a=b;c"}, nil, "--registry-map a=b;c: must be"},
		{nil, map[string]string{envRegistryMap: "a=b;=d"}, "--registry-map =d: must be"},
		{[]string{"--registry-mirror", "a=b"}, nil, "--registry-mirror a=b: must be host"},
	} {
		_, _, err := parseRegistryFlags(t, tc.env, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q env %v: err = %v, want it to contain %q", tc.args, tc.env, err, tc.want)
		}
	}
	if _, _, err := parseRegistryFlags(t, nil, "--registry-certificate", "reg.example="+ca, "--insecure-registry", "a:5000",
		"--skip-tls-verify-registry", "b", "--registry-map", "a=b;a=c", "--registry-mirror", "m1;m2"); err != nil {
		t.Errorf("valid flags rejected: %v", err)
	}
}

func TestRegistryMapsAndMirrorsAddEnvToFlags(t *testing.T) {
	lookup := func(env map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	}
	// Flags given: the environment adds to them (Kaniko appends it).
	got := withEnv([]string{"a=x"}, envRegistryMap, lookup(map[string]string{envRegistryMap: "b=y; a=x ;c=z"}))
	maps, err := parseRegistryMaps(got)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string][]string{"a": {"x"}, "b": {"y"}, "c": {"z"}}; !reflect.DeepEqual(maps, want) {
		t.Errorf("maps = %v, want %v", maps, want)
	}
	// No flag: the flag default already holds the environment's entries
	// (flags.go reads it); they must not be doubled.
	mirrors, err := parseMirrors(withEnv([]string{"m1", "m2"}, envRegistryMirror, lookup(map[string]string{envRegistryMirror: "m1;m2"})))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"m1", "m2"}; !reflect.DeepEqual(mirrors, want) {
		t.Errorf("mirrors = %v, want %v", mirrors, want)
	}
	maps, err = parseRegistryMaps([]string{"index.docker.io=m1;index.docker.io=m2"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"m1", "m2"}; !reflect.DeepEqual(maps["index.docker.io"], want) {
		t.Errorf("one original mapped twice keeps order: %v", maps)
	}
}

// TestMirrorFlagsPullDockerHubShortNames proves the flags reach registry.Pull:
// "busybox" comes from the mirror (Docker Hub is never asked: fallback is
// off), and an empty mirror fails naming it.
func TestMirrorFlagsPullDockerHubShortNames(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials from this machine
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := name.ParseReference(host + "/hub/library/busybox:latest")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(dst, img); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	ctx := context.Background()

	for _, args := range [][]string{
		{"--registry-mirror", host + "/hub", "--skip-default-registry-fallback"},
		{"--registry-map", "index.docker.io=" + host + "/hub", "--skip-default-registry-fallback"},
		{"--registry-map", "docker.io=" + host + "/nothing-here;docker.io=" + host + "/hub", "--skip-default-registry-fallback"},
	} {
		pull, _, err := parseRegistryFlags(t, nil, args...)
		if err != nil {
			t.Fatal(err)
		}
		got, err := registry.Pull(ctx, "busybox", pull...)
		if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if d, _ := got.Digest(); d != want {
			t.Errorf("%q: got %s, want the mirror's %s", args, d, want)
		}
	}

	pull, _, err := parseRegistryFlags(t, map[string]string{envRegistryMirror: host + "/empty"}, "--skip-default-registry-fallback")
	if err != nil {
		t.Fatal(err)
	}
	_, err = registry.Pull(ctx, "busybox:1.36", pull...)
	if err == nil || !strings.Contains(err.Error(), "mirror "+host+"/empty") || !strings.Contains(err.Error(), "fallback") {
		t.Errorf("err = %v, want the mirror from KANIKO_REGISTRY_MIRROR named and fallback disabled", err)
	}
}

// TestDockerHubCredentialKeys checks that the key Docker writes for Docker
// Hub ("https://index.docker.io/v1/") is used for every spelling of a Hub
// reference by the keychain the executor uses, and not for other registries.
func TestDockerHubCredentialKeys(t *testing.T) {
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("hubuser:hubpass"))
	cfg := fmt.Sprintf(`{"auths":{"https://index.docker.io/v1/":{"auth":%q},"reg.example:5000":{"username":"other","password":"pw"}}}`, auth)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	for ref, wantUser := range map[string]string{
		"busybox":                       "hubuser",
		"library/busybox:1":             "hubuser",
		"docker.io/library/busybox":     "hubuser",
		"index.docker.io/team/app:v1":   "hubuser",
		"registry-1.docker.io/team/app": "",
		"reg.example:5000/team/app":     "other",
		"ghcr.io/team/app":              "",
	} {
		r, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		a, err := authn.DefaultKeychain.Resolve(r.Context())
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		got, err := a.Authorization()
		if err != nil {
			t.Fatal(err)
		}
		if got.Username != wantUser {
			t.Errorf("%s: user %q, want %q", ref, got.Username, wantUser)
		}
	}
}
