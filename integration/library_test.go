package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/internal/testenv"
	"github.com/kilnbuild/kiln/registry"
)

// TestLibraryDirectoryRoot builds through the Go API into a directory root: RUN executes
// chrooted there, the host's / is untouched, and the image holds what RUN and COPY made.
func TestLibraryDirectoryRoot(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	marker := "/kiln-host-must-not-see-" + filepath.Base(t.TempDir())
	ctx := writeContext(t, map[string]string{"hello": "hi\n"})
	src := dockerfile.Source{Name: "Dockerfile", Data: []byte(`ARG BASE
FROM ` + base + ` AS build
RUN echo built-in-chroot > ` + marker + ` && echo "pid=$$" > /pid && hostname > /hostname
COPY hello /hello
FROM build
RUN cat /hello > /final
`)}
	root := filepath.Join(t.TempDir(), "rootfs")
	work := filepath.Join(t.TempDir(), "work")
	var out bytes.Buffer
	img, err := builder.Build(context.Background(), src,
		builder.WithDirectoryRoot(root), builder.WithWorkDir(work), builder.WithContextDir(ctx),
		builder.WithPullOptions(registry.WithInsecureAll(true)), builder.WithOutput(&out))
	if err != nil {
		t.Fatalf("Build: %v\n%s", err, out.String())
	}
	if _, err := os.Stat(marker); err == nil {
		os.Remove(marker)
		t.Fatalf("RUN wrote %s on the host", marker)
	}
	if b, err := os.ReadFile(filepath.Join(root, marker)); err != nil || string(b) != "built-in-chroot\n" {
		t.Errorf("root %s: %q %v", marker, b, err)
	}
	// RUN ran in its own pid namespace: its shell is one of the first pids there.
	if b, _ := os.ReadFile(filepath.Join(root, "pid")); !strings.HasPrefix(string(b), "pid=") || len(b) > len("pid=99\n") {
		t.Errorf("pid file %q: RUN did not get its own pid namespace", b)
	}
	// The image, written as an OCI layout, holds the files.
	lp := filepath.Join(t.TempDir(), "oci")
	if err := registry.WriteOCILayout(lp, img, "it/library:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := layout.FromPath(lp); err != nil {
		t.Fatalf("layout: %v", err)
	}
	files := exportImage(t, img)
	for _, p := range []string{strings.TrimPrefix(marker, "/"), "hello", "final", "bin/busybox"} {
		if _, ok := files[p]; !ok {
			t.Errorf("%s missing from the image", p)
		}
	}
	if files["final"] != "hi\n" {
		t.Errorf("/final = %q", files["final"])
	}
}

// exportImage flattens an image into path -> content of its regular files.
func exportImage(t *testing.T, img v1.Image) map[string]string {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	out := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		if hdr.Typeflag != tar.TypeReg {
			out[name] = ""
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = string(b)
	}
}
