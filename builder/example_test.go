package builder_test

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/registry"
)

// Build a Dockerfile into a directory root and write the image as an OCI layout. The build
// runs entirely inside the temporary directory: no daemon, no registry (FROM scratch), and
// nothing outside the directory changes. A Reporter receives the steps as events.
func ExampleBuild_directoryRoot() {
	dir, err := os.MkdirTemp("", "kiln-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// The build context: one file.
	contextDir := filepath.Join(dir, "context")
	if err := os.MkdirAll(contextDir, 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(contextDir, "hello.txt"), []byte("hello\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(contextDir, "hello.txt"), 0o644); err != nil { // whatever the umask
		log.Fatal(err)
	}
	src := dockerfile.Source{Name: "Dockerfile", Data: []byte(`FROM scratch
COPY hello.txt /app/hello.txt
ENV GREETING=hi
ENTRYPOINT ["/app/hello"]
`)}

	img, err := builder.Build(context.Background(), src,
		builder.WithDirectoryRoot(filepath.Join(dir, "rootfs")),
		builder.WithWorkDir(filepath.Join(dir, "work")),
		builder.WithContextDir(contextDir),
		builder.WithReproducible(true),
		builder.WithReporter(builder.ReporterFunc(func(e builder.Event) {
			if e.Kind == builder.EventStep {
				fmt.Printf("step %d/%d: %s\n", e.Step, e.Steps, e.Instruction)
			}
		})))
	if err != nil {
		log.Fatal(err)
	}

	// The image's layers live in the work directory: write it out before removing that.
	ociDir := filepath.Join(dir, "oci")
	if err := registry.WriteOCILayout(ociDir, img, "example/hello:1"); err != nil {
		log.Fatal(err)
	}

	// Read the layout back, as any OCI tool would.
	idx, err := layout.ImageIndexFromPath(ociDir)
	if err != nil {
		log.Fatal(err)
	}
	manifest, err := idx.IndexManifest()
	if err != nil {
		log.Fatal(err)
	}
	desc := manifest.Manifests[0]
	fmt.Println("layout:", desc.MediaType, desc.Annotations["org.opencontainers.image.ref.name"])
	stored, err := idx.Image(desc.Digest)
	if err != nil {
		log.Fatal(err)
	}
	cfg, err := stored.ConfigFile()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("entrypoint:", cfg.Config.Entrypoint, "env:", cfg.Config.Env)
	layers, err := stored.Layers()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("layers:", len(layers))
	rc, err := layers[0].Uncompressed()
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s %v %d\n", hdr.Name, os.FileMode(hdr.Mode).Perm(), hdr.Size)
	}
	// Output:
	// step 1/3: COPY hello.txt /app/hello.txt
	// step 2/3: ENV GREETING=hi
	// step 3/3: ENTRYPOINT ["/app/hello"]
	// layout: application/vnd.oci.image.manifest.v1+json example/hello:1
	// entrypoint: [/app/hello] env: [GREETING=hi]
	// layers: 1
	// app/ -rwxr-xr-x 0
	// app/hello.txt -rw-r--r-- 6
}
