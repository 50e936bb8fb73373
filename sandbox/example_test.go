package sandbox_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/sandbox"
)

// Run a build step in an image, as a CI job does in a container: unpack the image into a
// directory, then run a command there with a host directory mounted at /workspace. What the
// command writes to /workspace is on the host afterwards; nothing else on the host changes.
// (It needs root, as every sandbox does, and Debian's busybox-static for the image.)
func Example() {
	ctx := context.Background()
	// Usually the image comes from a registry: img, err := registry.Pull(ctx, "golang:1.26").
	img, err := busyboxImage(v1.Config{Env: []string{"GREETING=hello"}, WorkingDir: "/workspace"})
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "kiln-sandbox-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	root, err := sandbox.Unpack(ctx, img, filepath.Join(dir, "rootfs"))
	if err != nil {
		log.Fatal(err)
	}
	workspace := filepath.Join(dir, "workspace")
	if err := os.Mkdir(workspace, 0o755); err != nil {
		log.Fatal(err)
	}
	var out bytes.Buffer
	err = root.Run(ctx, sandbox.Command{
		Args:   []string{"sh", "-c", `echo "$GREETING $WHO from $(pwd) as $(id -un)"; echo built > out.txt`},
		Env:    []string{"WHO=world"}, // added to the image's Env
		Mounts: []sandbox.Mount{{Source: workspace, Target: "/workspace"}},
		Stdout: &out,
		Stderr: &out,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(out.String())
	built, err := os.ReadFile(filepath.Join(workspace, "out.txt"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print("the host sees out.txt: ", string(built))

	// A failing command: its exit code comes back as an *ExitError.
	err = root.Run(ctx, sandbox.Command{Args: []string{"sh", "-c", "exit 3"}, User: "builder"})
	var exit *sandbox.ExitError
	if errors.As(err, &exit) {
		fmt.Println("exit code:", exit.Code)
	}
	// Output:
	// hello world from /workspace as root
	// the host sees out.txt: built
	// exit code: 3
}
