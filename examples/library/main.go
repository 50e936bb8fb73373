// Command library is a tiny program that embeds Kiln's builder: it builds a Dockerfile into a
// directory root, reports the build's events on stderr, and writes the image as an OCI layout
// and/or pushes it. It shows how the packages compose: builder.Build returns a v1.Image, and
// package registry writes or pushes it.
//
//	go run ./examples/library -context ./app -root /tmp/rootfs -oci /tmp/oci -push localhost:5000/app:1
//
// RUN steps need root (they execute chrooted in new namespaces). Ctrl-C cancels the build:
// the running RUN is killed and the root stays usable for the next build.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/registry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "library:", err)
		os.Exit(1)
	}
}

// config is what the command line asks for.
type config struct {
	contextDir, dockerfile, root, oci, push, target string
	insecure                                        bool
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("library", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.contextDir, "context", ".", "build context directory")
	fs.StringVar(&c.dockerfile, "dockerfile", "", "Dockerfile (default <context>/Dockerfile)")
	fs.StringVar(&c.root, "root", "", "directory to build in (required; never /)")
	fs.StringVar(&c.oci, "oci", "", "write the image to this OCI layout directory")
	fs.StringVar(&c.push, "push", "", "push the image to this reference")
	fs.StringVar(&c.target, "target", "", "stage to build (default: the last)")
	fs.BoolVar(&c.insecure, "insecure", false, "allow plain HTTP registries (pull and push)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.root == "" {
		return c, errors.New("-root is required")
	}
	if c.oci == "" && c.push == "" {
		return c, errors.New("nothing to do: give -oci and/or -push")
	}
	if c.dockerfile == "" {
		c.dockerfile = filepath.Join(c.contextDir, "Dockerfile")
	}
	return c, nil
}

// run builds as the arguments say; RUN output goes to stdout, events to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	src, err := dockerfile.FromFile(c.dockerfile)
	if err != nil {
		return err
	}
	// Layers are written to the work directory; the image reads them until it is written out.
	work, err := os.MkdirTemp("", "kiln-library-work-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	var regOpts []registry.Option
	if c.insecure {
		regOpts = append(regOpts, registry.WithInsecureAll(true))
	}
	img, err := builder.Build(ctx, src,
		builder.WithDirectoryRoot(c.root),
		builder.WithWorkDir(work),
		builder.WithContextDir(c.contextDir),
		builder.WithTarget(c.target),
		builder.WithPullOptions(regOpts...),
		builder.WithOutput(stdout),
		builder.WithReporter(&eventPrinter{w: stderr}))
	if err != nil {
		return err
	}
	if c.oci != "" {
		if err := registry.WriteOCILayout(c.oci, img, c.push); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote OCI layout %s\n", c.oci)
	}
	if c.push != "" {
		d, err := registry.Push(ctx, img, []string{c.push}, regOpts...)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "pushed %s@%s\n", c.push, d)
	}
	return nil
}
