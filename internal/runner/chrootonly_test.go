package runner

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runChrooted is run for RunChrooted.
func runChrooted(t *testing.T, root string, mod func(*Spec), args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	s := Spec{Root: root, Args: args, Env: []string{"PATH=/bin"}, Stdout: &stdout, Stderr: &stderr}
	if mod != nil {
		mod(&s)
	}
	err := RunChrooted(ctx, s)
	return result{out: stdout.String(), err: stderr.String(), runErr: err}
}

// TestRunChrootedLeavesNoTrace: the command sees the root as "/", with /dev's devices,
// /etc/hosts, its working directory and a provided script; afterwards the root holds only
// what the command wrote (and the working directory), with the other times unchanged.
func TestRunChrootedLeavesNoTrace(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	if err := ChrootOnly(t.TempDir()); err != nil {
		t.Skipf("this machine cannot chroot with usable device nodes: %v", err)
	}
	before := listing(t, root)
	r := runChrooted(t, root, func(s *Spec) {
		s.Dir = "/work"
		s.Files = []File{{Path: "/dev/pipes/script", Data: []byte("echo from-script\n"), Mode: 0o755}}
	}, "sh", "-c", `echo /*; pwd; echo x > /dev/null && echo null-ok; head -c 4 /dev/zero | wc -c; `+
		`test -s /etc/hosts && echo hosts-ok; sh /dev/pipes/script; echo made > /made.txt`)
	if r.runErr != nil {
		t.Fatalf("RunChrooted: %v (stderr %q)", r.runErr, r.err)
	}
	for _, want := range []string{"/bin /dev /etc /work\n", "/work\n", "null-ok\n", "4\n", "hosts-ok\n", "from-script\n"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("output %q lacks %q", r.out, want)
		}
	}
	for _, p := range []string{"dev", "etc", "proc"} {
		if _, err := os.Lstat(filepath.Join(root, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("/%s is left in the root (%v)", p, err)
		}
	}
	if data, err := os.ReadFile(filepath.Join(root, "made.txt")); err != nil || string(data) != "made\n" {
		t.Errorf("/made.txt = %q, %v", data, err)
	}
	os.Remove(filepath.Join(root, "made.txt"))
	os.Remove(filepath.Join(root, "work"))
	// The root's own mtime changed (the command wrote /made.txt): compare the rest.
	strip := func(s string) string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			if !strings.HasPrefix(l, ". ") {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n")
	}
	if after := listing(t, root); strip(after) != strip(before) {
		t.Errorf("root changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestRunChrootedExitAndCancel: exit codes come back as ExitError; cancelling kills the
// command and what it started in the background.
func TestRunChrootedExitAndCancel(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	if err := ChrootOnly(t.TempDir()); err != nil {
		t.Skipf("this machine cannot chroot with usable device nodes: %v", err)
	}
	r := runChrooted(t, root, nil, "sh", "-c", "exit 7")
	var ee *ExitError
	if !errors.As(r.runErr, &ee) || ee.Code != 7 {
		t.Fatalf("want ExitError 7, got %v", r.runErr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RunChrooted(ctx, Spec{Root: root, Args: []string{"sh", "-c", "sleep 59 & sleep 58"}, Env: []string{"PATH=/bin"}})
	}()
	// Cancel once the background sleep runs, so its death proves the group was killed.
	for i := 0; pgrep("sleep 59") == ""; i++ {
		if i == 1000 {
			t.Fatal("the background sleep never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled run returned %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the cancelled run did not return")
	}
	if out := pgrep("sleep 59"); out != "" {
		t.Errorf("background process survived: %s", out)
	}
}

// TestRunChrootedRefusesMounts: what needs a namespace is an error naming why.
func TestRunChrootedRefusesMounts(t *testing.T) {
	err := RunChrooted(context.Background(), Spec{Root: t.TempDir(), Args: []string{"true"},
		Tmpfs: []Tmpfs{{Target: "/tmp"}}})
	if err == nil || !strings.Contains(err.Error(), "namespaces") {
		t.Fatalf("want an error about namespaces, got %v", err)
	}
}

// pgrep returns the pids of processes whose command line holds pattern.
func pgrep(pattern string) string {
	out, _ := exec.Command("pgrep", "-f", pattern).Output()
	return strings.TrimSpace(string(out))
}
