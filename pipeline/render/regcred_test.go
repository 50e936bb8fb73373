package render

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestRegistryHost(t *testing.T) {
	for _, tc := range []struct{ ref, host, server string }{
		{"${REGISTRY_USER}/minimalapi:${BUILD_NUMBER}", "docker.io", "https://index.docker.io/v1/"},
		{"minimalapi", "docker.io", "https://index.docker.io/v1/"},
		{"docker.io/kiln/app:1", "docker.io", "https://index.docker.io/v1/"},
		{"index.docker.io/kiln/app", "index.docker.io", "https://index.docker.io/v1/"},
		{"localhost:5000/hello:${BUILD_NUMBER}", "localhost:5000", "localhost:5000"},
		{"localhost/hello", "localhost", "localhost"},
		{"registry.example.com/team/app@sha256:abc", "registry.example.com", "registry.example.com"},
		{"ghcr.io/kilnbuild/executor:debug", "ghcr.io", "ghcr.io"},
	} {
		host := registryHost(tc.ref)
		if host != tc.host || dockerServer(host) != tc.server {
			t.Errorf("%s: host %s, server %s; want %s, %s", tc.ref, host, dockerServer(host), tc.host, tc.server)
		}
	}
}

// TestRegcred runs regcred.sh with a kubectl that records its arguments.
func TestRegcred(t *testing.T) {
	files := renderWalkthrough(t, Options{Targets: []string{TargetJob}})
	script := files[FileRegcred]
	base := []string{"create", "secret", "docker-registry", "regcred"}
	creds := []string{"REGISTRY_USERNAME=kiln", "REGISTRY_PASSWORD=s3cret $(not run)", "REGISTRY_EMAIL=ci@example.com"}
	args, err := runRegcred(t, script, creds...)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "kubectl args", args, append(base, "--docker-server=https://index.docker.io/v1/", "--docker-username=kiln",
		"--docker-password=s3cret $(not run)", "--docker-email=ci@example.com", "-n", "default"))

	args, err = runRegcred(t, script, append(creds, "REGISTRY_SERVER=registry.example.com")...)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "server", args[4], "--docker-server=registry.example.com")

	// Without a password the script fails, naming the variable, and kubectl never runs.
	args, err = runRegcred(t, script, "REGISTRY_USERNAME=kiln")
	if err == nil || !strings.Contains(err.Error(), "REGISTRY_PASSWORD") || args != nil {
		t.Errorf("no password: kubectl args %q, error %v; want a failure naming REGISTRY_PASSWORD", args, err)
	}

	// The destination's registry, the pipeline's Secret and namespace.
	p := walkthrough()
	p.Namespace, p.RegistrySecret = "apps", "push-creds"
	p.Image.Destinations = []string{"localhost:5000/minimalapi:${BUILD_NUMBER}", "ghcr.io/kiln/minimalapi:${BUILD_NUMBER}"}
	got, err := Render(p, TargetJob)
	if err != nil {
		t.Fatal(err)
	}
	args, err = runRegcred(t, got[FileRegcred], creds...)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "kubectl args", args, []string{"create", "secret", "docker-registry", "push-creds", "--docker-server=localhost:5000",
		"--docker-username=kiln", "--docker-password=s3cret $(not run)", "--docker-email=ci@example.com", "-n", "apps"})
	if !strings.Contains(string(got[FileRegcred]), "Other destinations are on ghcr.io") {
		t.Errorf("regcred.sh does not mention the second registry:\n%s", got[FileRegcred])
	}
}

// runRegcred runs the script with env and a fake kubectl first on PATH; it returns kubectl's
// arguments (nil if it did not run).
func runRegcred(t *testing.T, script []byte, env ...string) ([]string, error) {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh on this machine")
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "args")
	kubectl := "#!/bin/sh\nprintf '%s\\0' \"$@\" > " + shellWord(log) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "kubectl"), []byte(kubectl), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "regcred.sh"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sh, filepath.Join(dir, "regcred.sh"))
	cmd.Env = append([]string{"PATH=" + dir + ":/usr/bin:/bin"}, env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, &exec.Error{Name: string(out), Err: err}
	}
	data, err := os.ReadFile(log)
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00"), nil
}
