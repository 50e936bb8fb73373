package kube

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// pauseImage names the sandbox image, imported into containerd, never pulled.
const pauseImage = "kiln.local/pause:3.10"

// pauseSource is the pod sandbox's process: it holds the pod's namespaces,
// reaps orphans (it is pid 1 of the pod) and exits on SIGTERM or SIGINT.
const pauseSource = `package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	child := make(chan os.Signal, 1)
	signal.Notify(child, syscall.SIGCHLD)
	for {
		select {
		case <-stop:
			return
		case <-child:
			for {
				pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
		}
	}
}
`

// buildPauseImage compiles the pause program and writes a one-layer image
// of it as a docker-archive tarball in dir.
func buildPauseImage(dir string) (string, error) {
	bin, err := buildStaticGo(filepath.Join(dir, "pause-src"), "pause", pauseSource)
	if err != nil {
		return "", err
	}
	layer, err := fileLayer(bin, "pause")
	if err != nil {
		return "", err
	}
	base, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		OS: "linux", Architecture: runtime.GOARCH, RootFS: v1.RootFS{Type: "layers"},
		Config: v1.Config{Entrypoint: []string{"/pause"}},
	})
	if err != nil {
		return "", err
	}
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return "", err
	}
	tag, err := name.NewTag(pauseImage)
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "pause.tar")
	if err := tarball.WriteToFile(out, tag, img); err != nil {
		return "", fmt.Errorf("kube: write pause image %s: %w", out, err)
	}
	return out, nil
}

// buildStaticGo compiles a one-file Go program (standard library only) into
// a static binary dir/name, with the toolchain that runs the tests.
func buildStaticGo(dir, name, source string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".go"), []byte(source), 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, name+".go")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+goPath(), "CGO_ENABLED=0", "GOWORK=off", "GOTOOLCHAIN=local", "GO111MODULE=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", skipf("kube: cannot build %s (go build in %s: %v): %s", name, dir, err, out)
	}
	return bin, nil
}

// fileLayer is an uncompressed layer holding one executable file at /name.
func fileLayer(path, name string) (v1.Layer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}
