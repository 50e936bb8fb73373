package runner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Pod-mode tests run on the real root "/" with harmless commands only.

func TestPodExitCodeAndOutput(t *testing.T) {
	r := run(t, "/", func(s *Spec) { s.Env = append(s.Env, "WHO=pod") }, "sh", "-c", `echo "hi $WHO"; echo err >&2; exit 4`)
	var ee *ExitError
	if !errors.As(r.runErr, &ee) || ee.Code != 4 {
		t.Fatalf("want *ExitError 4, got %v", r.runErr)
	}
	if r.out != "hi pod\n" || r.err != "err\n" {
		t.Fatalf("stdout %q stderr %q", r.out, r.err)
	}
}

func TestPodCredentials(t *testing.T) {
	needRoot(t)
	out := mustRun(t, "/", func(s *Spec) { s.UID, s.GID, s.Groups = 1234, 4321, []uint32{77} }, "sh", "-c", "id -u; id -g; id -G")
	if out != "1234\n4321\n4321 77\n" {
		t.Fatalf("id output %q", out)
	}
}

func TestPodPathLookupUsesEnvPath(t *testing.T) {
	r := run(t, "/", func(s *Spec) { s.Env = []string{"PATH=/nonexistent"} }, "echo", "x")
	if r.runErr == nil || r.runErr.Error() != `exec: "echo": executable file not found in $PATH` {
		t.Fatalf("want not-found error, got %v", r.runErr)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "podtool"), []byte("#!/bin/sh\necho podtool\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out := mustRun(t, "/", func(s *Spec) { s.Env = []string{"PATH=/nonexistent:" + dir + ":/bin"} }, "podtool"); out != "podtool\n" {
		t.Fatalf("podtool output %q", out)
	}
}

func TestPodWorkdirAndFiles(t *testing.T) {
	base := t.TempDir()
	work := filepath.Join(base, "a", "b")
	script := filepath.Join(base, "pipes", "EOF")
	out := mustRun(t, "/", func(s *Spec) {
		s.Dir = work
		s.Files = []File{{Path: script, Data: []byte("#!/bin/sh\necho from script\n"), Mode: 0o755}}
	}, "sh", "-c", "pwd; "+script)
	if out != work+"\nfrom script\n" {
		t.Fatalf("output %q", out)
	}
	if _, err := os.Stat(work); err != nil {
		t.Fatalf("workdir not created: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(base, "pipes")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("provided file's directory left behind (err %v)", err)
	}
	// An existing file is never overwritten in pod mode.
	existing := filepath.Join(base, "existing")
	if err := os.WriteFile(existing, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, "/", func(s *Spec) { s.Files = []File{{Path: existing, Data: []byte("new")}} }, "sh", "-c", ":")
	if r.runErr == nil || !strings.Contains(r.runErr.Error(), existing) {
		t.Fatalf("want an error naming %s, got %v", existing, r.runErr)
	}
	if data, _ := os.ReadFile(existing); string(data) != "keep" {
		t.Fatalf("existing file overwritten: %q", data)
	}
}

func TestPodBackgroundProcessesDie(t *testing.T) {
	start := time.Now()
	if out := mustRun(t, "/", nil, "sh", "-c", "sleep 4245 & echo started"); out != "started\n" {
		t.Fatalf("output %q", out)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Run waited %v for a background process", d)
	}
	if pids := hostProcesses(t, "sleep\x004245"); len(pids) > 0 {
		t.Fatalf("background sleep still running as pids %v", pids)
	}
}

func TestPodCancelKillsGroup(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	var out strings.Builder
	err := Run(ctx, Spec{Root: "/", Args: []string{"sh", "-c", "sleep 4246 & sleep 100"}, Env: []string{"PATH=/usr/bin:/bin"}, Stdout: &out})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancel took %v", d)
	}
	if pids := hostProcesses(t, "sleep\x004246"); len(pids) > 0 {
		t.Fatalf("sleep survived cancel: pids %v", pids)
	}
}
