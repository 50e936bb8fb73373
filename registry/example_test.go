package registry_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/kilnbuild/kiln/registry"
)

// Push an image (here a one-file image made in memory; in practice what builder.Build
// returned) to a registry, pull it back, and write it as an OCI layout and a docker-archive
// tarball. The registry is go-containerregistry's in-memory one on a local port; it speaks
// plain HTTP, hence WithInsecureAll.
func ExamplePush() {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()

	img := oneFileImage("hello.txt", "hello\n")
	ref := host + "/example/hello:1"
	digest, err := registry.Push(ctx, img, []string{ref}, registry.WithInsecureAll(true))
	if err != nil {
		log.Fatal(err)
	}
	want, err := img.Digest()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("pushed the image's own digest:", digest == want)

	pulled, err := registry.Pull(ctx, ref, registry.WithInsecureAll(true))
	if err != nil {
		log.Fatal(err)
	}
	got, err := pulled.Digest()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("pulled the same digest:", got == digest)

	dir, err := os.MkdirTemp("", "kiln-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := registry.WriteOCILayout(filepath.Join(dir, "oci"), pulled, "example/hello:1"); err != nil {
		log.Fatal(err)
	}
	idx, err := layout.ImageIndexFromPath(filepath.Join(dir, "oci"))
	if err != nil {
		log.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("layout:", m.Manifests[0].MediaType, m.Manifests[0].Annotations["org.opencontainers.image.ref.name"])

	if err := registry.WriteTarball(filepath.Join(dir, "image.tar"), pulled, []string{ref}); err != nil {
		log.Fatal(err)
	}
	fromTar, err := tarball.ImageFromPath(filepath.Join(dir, "image.tar"), nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("tarball files:", files(fromTar))
	// Output:
	// pushed the image's own digest: true
	// pulled the same digest: true
	// layout: application/vnd.oci.image.manifest.v1+json example/hello:1
	// tarball files: [hello.txt]
}

// oneFileImage is an image with a single layer holding one file.
func oneFileImage(name, content string) v1.Image {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	must(tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content))}))
	_, err := tw.Write([]byte(content))
	must(err)
	must(tw.Close())
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	})
	must(err)
	img, err := mutate.AppendLayers(empty.Image, layer)
	must(err)
	return img
}

// files lists the regular files of an image's flattened filesystem.
func files(img v1.Image) []string {
	rc := mutate.Extract(img)
	defer rc.Close()
	var out []string
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		must(err)
		if hdr.Typeflag == tar.TypeReg {
			out = append(out, hdr.Name)
		}
	}
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
