package testenv

import (
	"archive/tar"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestPushExecutorImage(t *testing.T) {
	dir := t.TempDir()
	exe, pipe := filepath.Join(dir, "executor"), filepath.Join(dir, "pipeline")
	writeFile(t, exe, []byte("fake executor\n"), 0o755)
	writeFile(t, pipe, []byte("fake pipeline\n"), 0o755)
	r := StartRegistry(t, RegistryOptions{})
	ref := PushExecutorImage(t, r, "kiln/executor:debug", exe, pipe)

	files := ExportImage(t, r, ref)
	for p, want := range map[string]string{"kaniko/executor": "fake executor\n", "kaniko/pipeline": "fake pipeline\n"} {
		if e := files[p]; e.Type != tar.TypeReg || e.Mode&0o777 != 0o755 || string(e.Content) != want {
			t.Errorf("%s: type %c mode %o content %q; want an executable file holding %q", p, e.Type, e.Mode, e.Content, want)
		}
	}
	if e := files["kaniko/ssl/certs/ca-certificates.crt"]; !strings.Contains(string(e.Content), "BEGIN CERTIFICATE") {
		t.Errorf("the CA bundle holds no certificate: %+v", e)
	}
	for _, d := range []string{"kaniko/.docker", "workspace"} {
		if e, ok := files[d]; !ok || e.Type != tar.TypeDir {
			t.Errorf("%s: %+v, want a directory", d, e)
		}
	}
	if e := files["busybox/busybox"]; e.Type != tar.TypeReg || e.Mode&0o111 == 0 {
		t.Errorf("busybox/busybox: %+v, want the busybox binary", e)
	}
	if e := files["busybox/sh"]; e.Type != tar.TypeSymlink || e.Linkname != "busybox" {
		t.Errorf("busybox/sh: %+v, want an applet link to busybox", e)
	}
	if e := files["bin/sh"]; e.Type != tar.TypeSymlink || e.Linkname != "/busybox/sh" {
		t.Errorf("bin/sh: %+v, want a link to /busybox/sh", e)
	}
	for _, p := range []string{"etc/passwd", "tmp", "bin/busybox"} {
		if _, ok := files[p]; ok {
			t.Errorf("%s is in the image; deploy/Dockerfile's debug target has none", p)
		}
	}

	cf := Config(t, r, ref)
	c := cf.Config
	if !slices.Equal(c.Env, ExecutorImageEnv()) || c.WorkingDir != "/workspace" ||
		!slices.Equal(c.Entrypoint, []string{"/kaniko/executor"}) || len(c.Cmd) != 0 {
		t.Errorf("config %+v; want deploy/Dockerfile's debug target's", c)
	}
	if _, ok := c.Volumes["/busybox"]; !ok || cf.OS != "linux" || len(cf.History) != 3 {
		t.Errorf("volumes %v, os %q, %d history entries; want /busybox, linux, 3", c.Volumes, cf.OS, len(cf.History))
	}
}

func TestBuildCommandIn(t *testing.T) {
	mod := t.TempDir()
	writeFile(t, filepath.Join(mod, "go.mod"), []byte("module example.com/fake\n\ngo 1.22\n"), 0o644)
	writeFile(t, filepath.Join(mod, "cmd/pipeline/main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644)
	bin := t.TempDir()
	first, err := buildCommandIn(mod, bin, "pipeline")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(first), "pipeline-") {
		t.Errorf("binary name %q not content-addressed", first)
	}
	if again, err := buildCommandIn(mod, bin, "pipeline"); err != nil || again != first {
		t.Errorf("rebuild of unchanged sources gave %q (%v), want %q", again, err, first)
	}
	if left, _ := filepath.Glob(filepath.Join(bin, ".pipeline.tmp*")); len(left) > 0 {
		t.Errorf("temp builds left: %v", left)
	}
}

func TestBuildPipelineHonoursEnv(t *testing.T) {
	prebuilt := filepath.Join(t.TempDir(), "my-pipeline")
	writeFile(t, prebuilt, []byte("#!/bin/sh\n"), 0o755)
	t.Setenv(pipelineEnv, prebuilt)
	if got := BuildPipeline(t); got != prebuilt {
		t.Errorf("BuildPipeline = %q, want %s from %s", got, prebuilt, pipelineEnv)
	}
	if err := os.Remove(prebuilt); err != nil {
		t.Fatal(err)
	}
	ft := &recordingTB{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); BuildPipeline(ft) }()
	<-done
	if !strings.Contains(ft.errors(), pipelineEnv) {
		t.Errorf("a missing %s binary: %q; want a failure naming the variable", pipelineEnv, ft.errors())
	}
}
