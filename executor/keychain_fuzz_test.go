package executor

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// fakeHelper is a docker-credential-fuzz (DIR replaced by its directory) that answers "get"
// with the file out there and exits with the code in the file code. PATH is only its own
// directory, so programs are named by their paths.
const fakeHelper = `#!/bin/sh
[ "$1" = get ] || exit 1
/bin/cat >/dev/null
/bin/cat DIR/out
read code < DIR/code
exit $code
`

// helperPath puts a fake credential helper in a directory of its own, and makes that
// directory the whole PATH (so no config a fuzzer writes runs any other program), and
// DOCKER_CONFIG a directory without a config.
func helperPath(f *testing.F) string {
	dir := f.TempDir()
	script := strings.ReplaceAll(fakeHelper, "DIR", dir)
	if err := os.WriteFile(filepath.Join(dir, "docker-credential-fuzz"), []byte(script), 0o755); err != nil {
		f.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "out"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "code"), []byte("1"), 0o644)
	f.Setenv("PATH", dir)
	f.Setenv("DOCKER_CONFIG", f.TempDir())
	return dir
}

// resolveAll resolves the repositories a build uses through kc and returns the credentials of
// the first one; every error must name the config file.
func resolveAll(t *testing.T, kc authn.Keychain, path string) *authn.AuthConfig {
	var first *authn.AuthConfig
	for _, ref := range []string{"reg.example:5000/team/app", "busybox", "ghcr.io/o/r"} {
		repo, err := name.NewRepository(ref)
		if err != nil {
			t.Fatal(err)
		}
		a, err := kc.Resolve(repo)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name %s", err, path)
			}
			continue
		}
		c, err := a.Authorization()
		if err != nil {
			t.Fatalf("Authorization: %v", err)
		}
		if first == nil {
			first = c
		}
	}
	return first
}

// FuzzDockerConfig reads arbitrary config.json files as the executor does for every registry
// it talks to: nothing may panic, every error names the file, and an "auths" entry of the
// registry with a username and password in "auth" gives exactly those.
func FuzzDockerConfig(f *testing.F) {
	helperPath(f)
	auth := base64.StdEncoding.EncodeToString([]byte("user:pa:ss"))
	for _, s := range []string{
		`{"auths":{"reg.example:5000":{"username":"u","password":"p"},"https://index.docker.io/v1/":{"auth":"` + auth + `"}}}`,
		`{"auths":{"reg.example:5000":{"auth":"` + auth + `"}}}`,
		`{"auths":{"reg.example:5000":{"auth":"not base64!"}}}`,
		`{"auths":{"reg.example:5000":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("nocolon")) + `"}}}`,
		`{"auths":{"reg.example:5000":{"identitytoken":"tok","registrytoken":"rt"}}}`,
		`{"auths":{"http://reg.example:5000/v2/":{"username":"u","password":"p"}}}`,
		`{"credHelpers":{"reg.example:5000":"fuzz"},"credsStore":"missing"}`,
		`{"credsStore":"../../../bin/true"}`,
		`{"auths":null}`, `{"auths":[]}`, `[]`, `null`, ``, `{`, `{"auths":{"":{}}}`, `{"proxies":{"default":{"httpProxy":"x"}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "config.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		got := resolveAll(t, DockerConfigKeychain(path), path)
		var cf struct {
			Auths map[string]struct {
				Auth string `json:"auth"`
			} `json:"auths"`
			CredHelpers map[string]any `json:"credHelpers"`
			CredsStore  any            `json:"credsStore"`
		}
		if json.Unmarshal(data, &cf) != nil || cf.CredHelpers != nil || cf.CredsStore != nil || got == nil {
			return
		}
		raw, err := base64.StdEncoding.DecodeString(cf.Auths["reg.example:5000"].Auth)
		user, pass, ok := strings.Cut(string(raw), ":")
		if err != nil || !ok || len(cf.Auths) != 1 || user == "" || strings.ContainsAny(string(raw), "\x00\n") {
			return
		}
		if got.Username != user || got.Password != strings.Trim(pass, "\x00") {
			t.Errorf("auth %q gave user %q password %q", raw, got.Username, got.Password)
		}
	})
}

// FuzzCredentialHelper has a config.json send reg.example:5000 to docker-credential-fuzz,
// which prints out and exits with code 0 or 1. Nothing may panic, errors name the config
// file, and a helper that answers {"Username":U,"Secret":S} gives U and S (an identity token
// when U is "<token>").
func FuzzCredentialHelper(f *testing.F) {
	dir := helperPath(f)
	for _, s := range []string{
		`{"ServerURL":"reg.example:5000","Username":"u","Secret":"p"}`,
		`{"Username":"<token>","Secret":"identity"}`,
		`{"Username":"","Secret":""}`,
		`{"Username":"u","Secret":"p"} trailing`,
		`credentials not found in native keychain`,
		`{"Username":1}`, ``, `null`, `[]`, "{\"Secret\":\"\\u0000\"}",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	config := filepath.Join(f.TempDir(), "config.json")
	if err := os.WriteFile(config, []byte(`{"credHelpers":{"reg.example:5000":"fuzz"}}`), 0o600); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, out []byte, fail bool) {
		code := "0"
		if fail {
			code = "1"
		}
		if err := os.WriteFile(filepath.Join(dir, "out"), out, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "code"), []byte(code), 0o644); err != nil {
			t.Fatal(err)
		}
		repo, _ := name.NewRepository("reg.example:5000/team/app")
		a, err := DockerConfigKeychain(config).Resolve(repo)
		if err != nil {
			if !strings.Contains(err.Error(), config) {
				t.Fatalf("error %q does not name %s", err, config)
			}
			return
		}
		got, err := a.Authorization()
		if err != nil {
			t.Fatal(err)
		}
		var c struct{ Username, Secret string }
		if fail || json.NewDecoder(bytes.NewReader(out)).Decode(&c) != nil {
			return
		}
		want := authn.AuthConfig{Username: c.Username, Password: c.Secret}
		if c.Username == "<token>" {
			want = authn.AuthConfig{IdentityToken: c.Secret}
		}
		if *got != want {
			t.Errorf("helper said %q; credentials %+v, want %+v", out, *got, want)
		}
	})
}
