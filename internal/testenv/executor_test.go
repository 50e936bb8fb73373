package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuildExecutorInTempModule(t *testing.T) {
	mod := t.TempDir()
	writeFile(t, filepath.Join(mod, "go.mod"), []byte("module example.com/fake\n\ngo 1.22\n"), 0o644)
	writeFile(t, filepath.Join(mod, "cmd/executor/main.go"), []byte("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"fake executor\") }\n"), 0o644)
	bin := t.TempDir()
	first, err := buildExecutorIn(mod, bin)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(first), "executor-") {
		t.Errorf("binary name %q not content-addressed", first)
	}
	out, err := exec.Command(first).Output()
	if err != nil || string(out) != "fake executor\n" {
		t.Errorf("built binary printed %q (%v)", out, err)
	}
	// Static, so it runs in an empty pod root.
	if res := RunPod(t, Pod{Executor: first}); res.ExitCode != 0 || res.Stdout != "fake executor\n" {
		t.Errorf("in a pod: exit %d stdout %q stderr %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	second, err := buildExecutorIn(mod, bin)
	if err != nil || second != first {
		t.Errorf("rebuild of unchanged sources gave %q (%v), want %q", second, err, first)
	}
	if left, _ := filepath.Glob(filepath.Join(bin, ".executor.tmp*")); len(left) > 0 {
		t.Errorf("temp builds left: %v", left)
	}
	writeFile(t, filepath.Join(mod, "cmd/executor/main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644)
	if third, err := buildExecutorIn(mod, bin); err != nil || third == first {
		t.Errorf("changed sources gave %q (%v), want a new binary", third, err)
	}
	writeFile(t, filepath.Join(mod, "cmd/executor/main.go"), []byte("package main\n\nfunc main() { undefined() }\n"), 0o644)
	if _, err := buildExecutorIn(mod, bin); err == nil || !strings.Contains(err.Error(), "undefined") {
		t.Errorf("compile error not reported with the compiler's message: %v", err)
	}
}

func TestBuildExecutorHonoursEnv(t *testing.T) {
	prebuilt := filepath.Join(t.TempDir(), "my-executor")
	writeFile(t, prebuilt, []byte("#!/bin/sh\n"), 0o755)
	t.Setenv(executorEnv, prebuilt)
	if got := BuildExecutor(t); got != prebuilt {
		t.Errorf("BuildExecutor = %q, want %s from %s", got, prebuilt, executorEnv)
	}
	if err := os.Chmod(prebuilt, 0o644); err != nil {
		t.Fatal(err)
	}
	ft := &recordingTB{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); BuildExecutor(ft) }()
	<-done
	if !strings.Contains(ft.errors(), "not an executable file") {
		t.Errorf("non-executable %s not rejected: %q", executorEnv, ft.errors())
	}
}
