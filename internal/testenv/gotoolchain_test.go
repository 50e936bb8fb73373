package testenv

import (
	"slices"
	"strings"
	"testing"
)

func TestPushGoToolchain(t *testing.T) {
	if testing.Short() {
		t.Skip("tars the host's GOROOT the first time (a minute); skipped with -short")
	}
	r := StartRegistry(t, RegistryOptions{})
	ref := PushGoToolchain(t, r, "base/golang:local")
	cf := Config(t, r, ref)
	for _, want := range []string{"GOPATH=/go", "GOTOOLCHAIN=local"} {
		if !slices.Contains(cf.Config.Env, want) {
			t.Errorf("Env %q lacks %s", cf.Config.Env, want)
		}
	}
	if !strings.Contains(strings.Join(cf.Config.Env, " "), "/usr/local/go/bin") || cf.Config.WorkingDir != "/go" {
		t.Errorf("config %+v", cf.Config)
	}
	files := ExportImage(t, r, ref)
	if e, ok := files["usr/local/go/bin/go"]; !ok || e.Mode&0o111 == 0 {
		t.Errorf("usr/local/go/bin/go: %+v %v", e, ok)
	}
	for _, p := range []string{"usr/local/go/src/fmt/print.go", "bin/sh", "etc/passwd", "go/bin"} {
		if _, ok := files[p]; !ok {
			t.Errorf("the Go image lacks %s", p)
		}
	}
	if e := files["usr/local"]; e.Mode&0o777 != 0o755 {
		t.Errorf("usr/local mode %o, want 755", e.Mode)
	}

	// The GOROOT layer comes from the cache the second time: the same digest.
	digests := func() []string {
		ls, err := GoToolchainImage(t).Layers()
		if err != nil {
			t.Fatal(err)
		}
		d, err := ls[1].Digest()
		if err != nil {
			t.Fatal(err)
		}
		return []string{d.String()}
	}
	if a, b := digests(), digests(); !slices.Equal(a, b) {
		t.Errorf("GOROOT layer digest changed between calls: %v %v", a, b)
	}
}
