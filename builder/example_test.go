package builder_test

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/cache"
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
	// entrypoint: [/app/hello] env: [PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin GREETING=hi]
	// layers: 1
	// app/ -rwxr-xr-x 0
	// app/hello.txt -rw-r--r-- 6
}

// Build twice with a layer cache in a registry (an in-memory one here): the second build reuses
// every cached layer, and after a context file changes, only the instructions that depend on it
// miss, naming the file. COPY is cached here because CacheCopyLayers is on (RUN always is).
func ExampleBuild_registryCache() {
	dir, err := os.MkdirTemp("", "kiln-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	store, err := cache.NewRegistryStore(strings.TrimPrefix(srv.URL, "http://") + "/example/cache")
	if err != nil {
		log.Fatal(err)
	}

	contextDir := filepath.Join(dir, "context")
	write := func(name, content string) {
		if err := os.MkdirAll(contextDir, 0o755); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(contextDir, name), []byte(content), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	write("config.txt", "port=80\n")
	write("app.txt", "v1\n")
	src := dockerfile.Source{Name: "Dockerfile", Data: []byte(`FROM scratch
COPY config.txt /etc/app/config.txt
ENV MODE=prod
COPY app.txt /app/app.txt
`)}
	build := func(round string) {
		fmt.Println(round)
		_, err := builder.Build(context.Background(), src,
			builder.WithDirectoryRoot(filepath.Join(dir, "rootfs")),
			builder.WithWorkDir(filepath.Join(dir, "work")),
			builder.WithContextDir(contextDir),
			builder.WithReproducible(true),
			builder.WithCache(store, builder.CacheCopyLayers(true)),
			builder.WithReporter(builder.ReporterFunc(func(e builder.Event) {
				switch e.Kind {
				case builder.EventCacheHit:
					fmt.Printf("  hit  %s\n", e.Instruction)
				case builder.EventCacheMiss:
					// The message names the key (it depends on the platform); print the reason.
					_, reason, _ := strings.Cut(e.Message, ": ")
					fmt.Printf("  miss %s: %s\n", e.Instruction, reason)
				}
			})))
		if err != nil {
			log.Fatal(err)
		}
	}
	build("first build:")
	build("second build:")
	write("app.txt", "v2\n")
	build("after editing app.txt:")
	// Output:
	// first build:
	//   miss COPY config.txt /etc/app/config.txt: no entry (no earlier entry for this instruction)
	//   miss COPY app.txt /app/app.txt: no entry (no earlier entry for this instruction)
	// second build:
	//   hit  COPY config.txt /etc/app/config.txt
	//   hit  COPY app.txt /app/app.txt
	// after editing app.txt:
	//   hit  COPY config.txt /etc/app/config.txt
	//   miss COPY app.txt /app/app.txt: no entry: app.txt changed (content)
}
