package snapshot_test

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/kilnbuild/kiln/snapshot"
)

// Snapshot a change to a directory as a layer: record the root, change it (add a file,
// delete one), take the layer and list its tar entries. The deletion becomes a whiteout.
func ExampleSnapshotter_Take() {
	dir, err := os.MkdirTemp("", "kiln-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	root := filepath.Join(dir, "root")
	must(os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(os.Chmod(filepath.Join(root, "etc"), 0o755)) // modes independent of the umask
	must(os.WriteFile(filepath.Join(root, "etc", "old.conf"), []byte("old\n"), 0o644))

	layers := filepath.Join(dir, "layers") // WithLayerDir needs an existing directory
	must(os.Mkdir(layers, 0o755))
	ctx := context.Background()
	snap := snapshot.New(root,
		snapshot.WithLayerDir(layers),
		snapshot.WithReproducible(true))
	must(snap.Reset(ctx)) // the baseline: what a base image left in the root

	// What an instruction might do.
	must(os.MkdirAll(filepath.Join(root, "app"), 0o755))
	must(os.Chmod(filepath.Join(root, "app"), 0o755))
	must(os.WriteFile(filepath.Join(root, "app", "run.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	must(os.Chmod(filepath.Join(root, "app", "run.sh"), 0o755))
	must(os.Remove(filepath.Join(root, "etc", "old.conf")))

	layer, err := snap.Take(ctx)
	if err != nil {
		log.Fatal(err)
	}
	mt, err := layer.MediaType()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("media type:", mt)
	rc, err := layer.Uncompressed()
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
		fmt.Printf("%s %v size=%d mtime=%d\n", hdr.Name, os.FileMode(hdr.Mode).Perm(), hdr.Size, hdr.ModTime.Unix())
	}

	// Nothing changed since: no layer.
	again, err := snap.Take(ctx)
	fmt.Println("second take:", again == nil, err)
	// Output:
	// media type: application/vnd.docker.image.rootfs.diff.tar.gzip
	// app/ -rwxr-xr-x size=0 mtime=0
	// app/run.sh -rwxr-xr-x size=18 mtime=0
	// etc/ -rwxr-xr-x size=0 mtime=0
	// etc/.wh.old.conf -rw-r--r-- size=0 mtime=0
	// second take: true <nil>
}

// Extract applies a layer tar to a root: files are written and whiteouts delete what lower
// layers put there.
func ExampleExtract() {
	dir, err := os.MkdirTemp("", "kiln-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	must(os.WriteFile(filepath.Join(dir, "stale"), []byte("x"), 0o644))

	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		_ = tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755})
		_ = tw.WriteHeader(&tar.Header{Name: "bin/tool", Typeflag: tar.TypeReg, Mode: 0o755, Size: 3})
		_, _ = tw.Write([]byte("hi\n"))
		_ = tw.WriteHeader(&tar.Header{Name: ".wh.stale", Typeflag: tar.TypeReg})
		pw.CloseWithError(tw.Close())
	}()
	must(snapshot.Extract(context.Background(), dir, pr))

	entries, err := os.ReadDir(dir)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range entries {
		fmt.Println(e.Name())
	}
	b, err := os.ReadFile(filepath.Join(dir, "bin", "tool"))
	fmt.Printf("bin/tool: %q %v\n", b, err)
	// Output:
	// bin
	// bin/tool: "hi\n" <nil>
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
