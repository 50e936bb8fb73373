package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// pipelineEnv names a prebuilt cmd/pipeline binary to use instead of building one.
const pipelineEnv = "KILN_PIPELINE"

// thePipeline memoizes the one build of cmd/pipeline per test process (like theExecutor).
var thePipeline executorBuild

// BuildPipeline returns the path of a static build of ./cmd/pipeline, built once per test
// process into /var/tmp/kiln-test/bin as BuildExecutor builds the executor. KILN_PIPELINE,
// when set, names a prebuilt binary to use instead.
func BuildPipeline(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(pipelineEnv); p != "" {
		if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			t.Fatalf("testenv: %s=%q is not an executable file (%v)", pipelineEnv, p, err)
		}
		return p
	}
	thePipeline.once.Do(func() {
		modDir, err := moduleDir()
		if err != nil {
			thePipeline.err = err
			return
		}
		thePipeline.path, thePipeline.err = buildCommandIn(modDir, filepath.Join(debianCacheDir, "bin"), "pipeline")
	})
	if thePipeline.err != nil {
		t.Fatalf("testenv: build pipeline: %v", thePipeline.err)
	}
	return thePipeline.path
}

// buildCommandIn builds modDir's cmd/<name> into binDir as <name>-<content hash>, so parallel
// test processes never overwrite a binary another one runs; stale builds are pruned after a day.
func buildCommandIn(modDir, binDir, name string) (string, error) {
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", err
	}
	tmp := filepath.Join(binDir, fmt.Sprintf(".%s.tmp%d", name, os.Getpid()))
	defer os.Remove(tmp)
	if err := goBuild(modDir, "./cmd/"+name, tmp); err != nil {
		return "", err
	}
	sum, err := fileSHA256(tmp)
	if err != nil {
		return "", err
	}
	out := filepath.Join(binDir, name+"-"+sum[:16])
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	pruneOld(binDir, name+"-*", out, 24*time.Hour)
	return out, nil
}

// ExecutorImageEnv is the environment of Kiln's executor image, as deploy/Dockerfile's debug
// target (and Kaniko's executor:debug) sets it.
func ExecutorImageEnv() []string {
	return []string{
		"HOME=/root", "USER=root", "PATH=/usr/local/bin:/kaniko:/busybox",
		"SSL_CERT_DIR=/kaniko/ssl/certs", "DOCKER_CONFIG=/kaniko/.docker/",
	}
}

// PushExecutorImage pushes Kiln's executor image, laid out as deploy/Dockerfile's debug target,
// made in-process from prebuilt static binaries (BuildExecutor, BuildPipeline), to r as repoTag
// and returns its reference. Three layers: the directories and the host's CA bundle
// (/kaniko/ssl/certs/ca-certificates.crt, /kaniko/.docker/, /workspace); /kaniko/executor and
// /kaniko/pipeline; busybox-static with its applets in /busybox and /bin/sh -> /busybox/sh.
// The config: ExecutorImageEnv(), WorkingDir /workspace, Entrypoint /kaniko/executor, Volume
// /busybox. Building deploy/Dockerfile itself with the executor is integration/selfbuild_test.go's.
func PushExecutorImage(t testing.TB, r *Registry, repoTag, executorBin, pipelineBin string) string {
	t.Helper()
	start := time.Now()
	layers := []struct {
		createdBy string
		fill      func(root string) error
	}{
		{"testenv: /kaniko/ssl/certs, /kaniko/.docker, /workspace", executorImageDirs},
		{"testenv: /kaniko/executor and /kaniko/pipeline", func(root string) error {
			return executorImageBinaries(root, executorBin, pipelineBin)
		}},
		{"testenv: busybox-static in /busybox, /bin/sh", func(root string) error { return executorImageBusybox(t, root) }},
	}
	var adds []mutate.Addendum
	for i, l := range layers {
		root := t.TempDir()
		if err := os.Chmod(root, 0o755); err != nil { // the layer's "./" entry is the image's /
			t.Fatalf("testenv: %v", err)
		}
		if err := l.fill(root); err != nil {
			t.Fatalf("testenv: executor image layer %d (%s): %v", i+1, l.createdBy, err)
		}
		out := filepath.Join(t.TempDir(), "layer.tar.gz")
		d, err := tarGzipWithTools(root, out)
		if err != nil {
			t.Fatalf("testenv: executor image layer %d: %v", i+1, err)
		}
		layer, err := layerFromGzipFile(out, d)
		if err != nil {
			t.Fatalf("testenv: executor image layer %d: %v", i+1, err)
		}
		adds = append(adds, mutate.Addendum{Layer: layer, History: v1.History{CreatedBy: l.createdBy}})
	}
	img, err := mutate.Append(empty.Image, adds...)
	if err != nil {
		t.Fatalf("testenv: assemble the executor image: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("testenv: read config: %v", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = v1.Config{
		Env:        ExecutorImageEnv(),
		WorkingDir: "/workspace",
		Entrypoint: []string{"/kaniko/executor"},
		Volumes:    map[string]struct{}{"/busybox": {}},
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatalf("testenv: set config: %v", err)
	}
	ref := r.Ref(repoTag)
	if err := pushImage(r, ref, img); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Logf("testenv: executor image %s made and pushed in %s", ref, time.Since(start).Round(time.Millisecond))
	return ref
}

// executorImageDirs lays out the executor image's directories and CA bundle under root.
func executorImageDirs(root string) error {
	for _, d := range []string{"kaniko/ssl/certs", "kaniko/.docker", "workspace"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	const bundle = "/etc/ssl/certs/ca-certificates.crt"
	certs, err := os.ReadFile(bundle)
	if err != nil {
		return fmt.Errorf("the image's CA bundle comes from this machine (apt-get install ca-certificates): %w", err)
	}
	return os.WriteFile(filepath.Join(root, "kaniko/ssl/certs/ca-certificates.crt"), certs, 0o644)
}

// executorImageBinaries copies the two binaries to root/kaniko.
func executorImageBinaries(root, executorBin, pipelineBin string) error {
	if err := os.Mkdir(filepath.Join(root, "kaniko"), 0o755); err != nil {
		return err
	}
	for src, dst := range map[string]string{executorBin: "kaniko/executor", pipelineBin: "kaniko/pipeline"} {
		if err := copyFile(src, filepath.Join(root, dst), 0o755); err != nil {
			return fmt.Errorf("copy %s: %w", src, err)
		}
	}
	return nil
}

// executorImageBusybox puts the busybox image's /bin at root/busybox and the link
// /bin/sh -> /busybox/sh, as the debug target does.
func executorImageBusybox(t testing.TB, root string) error {
	scratch := t.TempDir()
	makeBusyboxRoot(t, scratch)
	if err := os.Rename(filepath.Join(scratch, "bin"), filepath.Join(root, "busybox")); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(root, "bin"), 0o755); err != nil {
		return err
	}
	return os.Symlink("/busybox/sh", filepath.Join(root, "bin/sh"))
}
