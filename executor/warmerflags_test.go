package executor

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWarmerFlagsDefaultsAndShorthands(t *testing.T) {
	c, err := ParseWarmerFlags([]string{"-i", "alpine", "--image", "debian:12", "-f", "-d", "Dockerfile",
		"--build-arg", "BASE=x", "--customPlatform", "linux/arm64", "-v", "debug"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Images, ",") != "alpine,debian:12" || !c.Force || c.Dockerfile != "Dockerfile" ||
		c.BuildArgs[0] != "BASE=x" || c.CustomPlatform != "linux/arm64" || c.Verbosity != "debug" {
		t.Errorf("parsed %+v", c)
	}
	if c.CacheDir != "/cache" || c.CacheTTL != 336*time.Hour || c.LogFormat != "color" {
		t.Errorf("defaults: --cache-dir %q --cache-ttl %s --log-format %q; want Kaniko's /cache, 336h, color", c.CacheDir, c.CacheTTL, c.LogFormat)
	}
	c, err = ParseWarmerFlags([]string{"-c", "/tmp/x", "--dockerfile", "D", "--custom-platform", "linux/amd64"})
	if err != nil || c.CacheDir != "/tmp/x" || c.CustomPlatform != "linux/amd64" {
		t.Errorf("-c / --custom-platform: %+v, %v", c, err)
	}
}

func TestWarmerFlagsErrorsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--image"},
		{[]string{"-i", "a", "--log-format", "xml"}, "--log-format=xml"},
		{[]string{"-i", "a", "--custom-platform", "linux/amd64/v1/x"}, "--custom-platform"},
		{[]string{"-i", "a", "--build-arg", "=v"}, "--build-arg"},
		{[]string{"-i", "a", "--cache-dir", ""}, "--cache-dir"},
		{[]string{"-i", "a", "stray"}, "stray"},
		{[]string{"--destination", "x"}, "destination"},
	} {
		_, err := ParseWarmerFlags(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one naming %s", tc.args, err, tc.want)
		}
	}
}

// The registry flags reach the registry options, and their errors name the flag as the
// executor's do.
func TestWarmerPullOptions(t *testing.T) {
	noEnv := func(string) (string, bool) { return "", false }
	c, err := ParseWarmerFlags([]string{"-i", "a", "--insecure", "--skip-tls-verify", "--insecure-registry", "r:5000",
		"--skip-tls-verify-registry", "s:5000", "--registry-mirror", "mirror.example", "--registry-map", "a.io=b.io",
		"--skip-default-registry-fallback"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Registry.Insecure || !c.Registry.SkipTLSVerify || c.Registry.InsecureRegistries[0] != "r:5000" ||
		c.Registry.SkipTLSVerifyRegistries[0] != "s:5000" || c.Registry.RegistryMirrors[0] != "mirror.example" ||
		c.Registry.RegistryMaps[0] != "a.io=b.io" || !c.Registry.SkipDefaultRegistryFallback {
		t.Errorf("registry flags: %+v", c.Registry)
	}
	opts, err := c.PullOptions(noEnv)
	if err != nil || len(opts) == 0 {
		t.Fatalf("PullOptions: %d options, %v", len(opts), err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--registry-map", "nonsense"}, "--registry-map nonsense"},
		{[]string{"--registry-mirror", "a=b"}, "--registry-mirror a=b"},
		{[]string{"--registry-certificate", "host=" + filepath.Join(t.TempDir(), "missing.pem")}, "--registry-certificate"},
		{[]string{"--registry-client-cert", "host=only-cert"}, "--registry-client-cert"},
	} {
		c, err := ParseWarmerFlags(append([]string{"-i", "a"}, tc.args...))
		if err == nil {
			_, err = c.PullOptions(noEnv)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one naming %s", tc.args, err, tc.want)
		}
	}
	// KANIKO_REGISTRY_MAP adds to the flags, as in the executor.
	c, _ = ParseWarmerFlags([]string{"-i", "a"})
	_, err = c.PullOptions(func(k string) (string, bool) {
		if k == envRegistryMap {
			return "broken", true
		}
		return "", false
	})
	if err == nil || !strings.Contains(err.Error(), "--registry-map") {
		t.Errorf("a broken KANIKO_REGISTRY_MAP: %v", err)
	}
}
