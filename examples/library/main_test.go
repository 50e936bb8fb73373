package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// TestRunWritesOCILayout runs the program on a FROM scratch Dockerfile (no registry, no RUN)
// and reads the layout it wrote back.
func TestRunWritesOCILayout(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("building needs root: COPY sets file owners in the root (this machine runs tests as non-root)")
	}
	dir := t.TempDir()
	ctxDir := filepath.Join(dir, "ctx")
	if err := os.MkdirAll(ctxDir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"Dockerfile": "FROM scratch\nCOPY greeting /greeting\nCMD [\"/greeting\"]\n",
		"greeting":   "hello from the library\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(ctxDir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	oci := filepath.Join(dir, "oci")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-context", ctxDir, "-root", filepath.Join(dir, "rootfs"), "-oci", oci},
		&stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{"[1/2] COPY greeting /greeting", "built in", "wrote OCI layout " + oci} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	idx, err := layout.ImageIndexFromPath(oci)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 {
		t.Fatalf("layout holds %d manifests, want 1", len(m.Manifests))
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Config.Cmd, " "); got != "/greeting" {
		t.Errorf("Cmd = %q", got)
	}
	if n := len(cfg.RootFS.DiffIDs); n != 1 {
		t.Errorf("%d layers, want 1", n)
	}
}

// TestRunNeedsRootAndOutput checks the flag errors.
func TestRunNeedsRootAndOutput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-oci", "x"}, "-root is required"},
		{[]string{"-root", "r"}, "nothing to do"},
	} {
		var stderr bytes.Buffer
		err := run(context.Background(), tc.args, &stderr, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run %v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}
