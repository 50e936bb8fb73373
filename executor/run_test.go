package executor

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// startRegistry serves an in-memory registry on 127.0.0.1 and pushes a random one-layer base
// image to it; it returns the host and the base reference.
func startRegistry(t *testing.T) (host, base string) {
	t.Helper()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host = strings.TrimPrefix(srv.URL, "http://")
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	base = host + "/base:1"
	ref, _ := name.ParseReference(base)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	return host, base
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRunDirectoryMode runs the executor's flags in-process into a directory root: the image
// is pushed with the COPY's layer on the base's, the outputs the flags name are written, and
// events and messages reach the logger.
func TestRunDirectoryMode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("directory-mode builds need root (ownership of unpacked files); not root here")
	}
	host, base := startRegistry(t)
	ctxDir, out := t.TempDir(), t.TempDir()
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": "FROM " + base + "\nCOPY hello /hello\n", "hello": "hi\n"})
	c, err := ParseFlags([]string{"--context=dir://" + ctxDir, "--destination=" + host + "/app:1", "--label=team=kiln",
		"--digest-file=" + out + "/digest", "--tar-path=" + out + "/img.tar", "--kaniko-dir=" + filepath.Join(out, "kaniko")})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	l, _ := NewLogger(&logs, "text", "info", false)
	root := filepath.Join(t.TempDir(), "rootfs")
	res, err := Run(context.Background(), c, WithDirectoryRoot(root), WithWorkDir(root+".work"),
		WithLogger(l), WithDockerConfig(t.TempDir()))
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, logs.String())
	}
	ref, _ := name.ParseReference(host + "/app:1")
	pushed, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := pushed.Digest(); d != res.Digest {
		t.Errorf("registry holds %s, Run says %s", d, res.Digest)
	}
	if layers, _ := pushed.Layers(); len(layers) != 2 {
		t.Errorf("pushed image has %d layers, want the base's and the COPY's", len(layers))
	}
	if cf, _ := pushed.ConfigFile(); cf.Config.Labels["team"] != "kiln" {
		t.Errorf("--label not applied: %v", cf.Config.Labels)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "digest")); string(b) != res.Digest.String() {
		t.Errorf("--digest-file holds %q, want %s", b, res.Digest)
	}
	if _, err := os.Stat(filepath.Join(out, "img.tar")); err != nil {
		t.Errorf("--tar-path: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "hello")); err != nil || string(b) != "hi\n" {
		t.Errorf("root/hello = %q, %v: COPY did not build into the directory root", b, err)
	}
	if _, err := os.Stat(filepath.Join(out, "kaniko")); !os.IsNotExist(err) {
		t.Errorf("directory mode touched --kaniko-dir: %v", err)
	}
	for _, want := range []string{"[1/1] COPY hello /hello", "Pushed " + res.Digest.String()} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// TestRunTarContextInDirectoryMode fetches a tar.gz context into a scratch directory of the
// run's own (never <kaniko-dir>/buildcontext on the host) and removes it afterwards.
func TestRunTarContextInDirectoryMode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("directory-mode builds need root (ownership of unpacked files); not root here")
	}
	_, base := startRegistry(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	archive := filepath.Join(t.TempDir(), "ctx.tar.gz")
	writeTarGz(t, archive, map[string]string{"Dockerfile": "FROM " + base + "\nCOPY a.txt /a.txt\n", "a.txt": "A\n"})
	kanikoDir := filepath.Join(t.TempDir(), "kaniko")
	c, err := ParseFlags([]string{"--context=tar://" + archive, "--no-push", "--kaniko-dir=" + kanikoDir,
		"--oci-layout-path=" + filepath.Join(t.TempDir(), "oci")})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := NewLogger(io.Discard, "text", "info", false)
	root := filepath.Join(t.TempDir(), "rootfs")
	if _, err := Run(context.Background(), c, WithDirectoryRoot(root), WithLogger(l)); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "a.txt")); err != nil || string(b) != "A\n" {
		t.Errorf("root/a.txt = %q, %v", b, err)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "kiln-context-*")); len(left) != 0 {
		t.Errorf("context scratch directory left behind: %v", left)
	}
	if _, err := os.Stat(kanikoDir); !os.IsNotExist(err) {
		t.Errorf("directory mode unpacked the context under --kaniko-dir: %v", err)
	}
}

func writeTarGz(t *testing.T, path string, files map[string]string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for p, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: p, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRunNeedsAnExplicitRoot: no root option is an error, and pod mode refuses to run where
// this is not a build pod (the test binary is not inside --kaniko-dir) unless --force is set.
// The context does not exist, so even a wrong answer could not reach the build.
func TestRunNeedsAnExplicitRoot(t *testing.T) {
	c, err := ParseFlags([]string{"--no-push", "--context=dir:///nonexistent-kiln-context", "--kaniko-dir=" + t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := NewLogger(io.Discard, "text", "info", false)
	if _, err := Run(context.Background(), c, WithLogger(l)); !errors.Is(err, errNoRoot) {
		t.Errorf("no root option: err = %v, want %v", err, errNoRoot)
	}
	_, err = Run(context.Background(), c, WithPodRoot(), WithLogger(l))
	if err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("pod mode outside a build pod: err = %v, want a refusal", err)
	}
}
