package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/kilnbuild/kiln/internal/testenv"
	"github.com/kilnbuild/kiln/internal/testenv/gitserver"
)

// contextDockerfile copies one file whose content says which context it came from.
const contextDockerfile = "ARG BASE\nFROM ${BASE}\nCOPY hello.txt /hello.txt\n"

// TestPodBuildContexts builds in a pod from a tar.gz on stdin (with a sub-path), from a tar.gz
// file in the pod, and from a git repository served over https, and checks each pushed image
// holds the file of its own context.
func TestPodBuildContexts(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	exe := testenv.BuildExecutor(t)
	build := func(t *testing.T, p testenv.Pod, dest string, args ...string) {
		t.Helper()
		p.Executor = exe
		p.Context = t.TempDir() // an empty /workspace: the files must come from --context
		p.Args = append([]string{"--force", "--log-format", "text", "--build-arg", "BASE=" + base,
			"--destination", dest, "--insecure", "--insecure-pull"}, args...)
		if res := testenv.RunPod(t, p); res.ExitCode != 0 {
			t.Fatalf("executor exit code %d\nstdout:\n%s\nstderr:\n%s", res.ExitCode, res.Stdout, res.Stderr)
		}
		if got := string(file(t, testenv.ExportImage(t, reg, dest), "hello.txt").Content); got != t.Name()+"\n" {
			t.Fatalf("/hello.txt in %s holds %q, want %q", dest, got, t.Name()+"\n")
		}
	}

	t.Run("stdin", func(t *testing.T) {
		archive := tarGz(t, map[string]string{"app/Dockerfile": contextDockerfile, "app/hello.txt": t.Name() + "\n", "hello.txt": "wrong level\n"})
		build(t, testenv.Pod{Stdin: bytes.NewReader(archive)}, reg.Ref("it/ctx-stdin:1"),
			"--context", "tar://stdin", "--context-sub-path", "app")
	})
	t.Run("tar file", func(t *testing.T) {
		archive := filepath.Join(t.TempDir(), "ctx.tar.gz")
		if err := os.WriteFile(archive, tarGz(t, map[string]string{"Dockerfile": contextDockerfile, "hello.txt": t.Name() + "\n"}), 0o644); err != nil {
			t.Fatal(err)
		}
		build(t, testenv.Pod{Mounts: map[string]string{"/ctx.tar.gz": archive}}, reg.Ref("it/ctx-tar:1"),
			"--context", "tar:///ctx.tar.gz")
	})
	t.Run("git", func(t *testing.T) {
		srv := gitserver.Serve(t, true)
		repo := gitserver.NewRepo(t)
		gitserver.Commit(t, repo, "main", map[string]string{"Dockerfile": contextDockerfile, "hello.txt": "main branch\n"})
		gitserver.Git(t, repo, "checkout", "-q", "-b", "feature")
		gitserver.Commit(t, repo, "feature", map[string]string{"hello.txt": t.Name() + "\n"})
		srv.Publish(t, repo, "app.git")
		build(t, testenv.Pod{}, reg.Ref("it/ctx-git:1"),
			"--context", "git://"+srv.Host+"/app.git#refs/heads/feature",
			"--git", "single-branch=true", "--git", "insecure-skip-tls=true")
	})
}

// tarGz packs files (path -> content) into a tar.gz, parents first.
func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	dirs := map[string]bool{}
	for _, p := range paths {
		if d := filepath.Dir(p); d != "." && !dirs[d] {
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
				t.Fatal(err)
			}
		}
		body := files[p]
		if err := tw.WriteHeader(&tar.Header{Name: p, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
