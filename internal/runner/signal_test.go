package runner

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestDirForwardsSignalsToCommand(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), Spec{
			Root:   root,
			Args:   []string{"/bin/sh", "-c", `trap "echo got term; exit 5" TERM; echo ready; while :; do sleep 0.1; done`},
			Stdout: pw,
		})
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("first line %q", lines.Text())
	}
	helpers := helperPids(t)
	if len(helpers) != 1 {
		t.Fatalf("want one helper process, found %v", helpers)
	}
	if err := syscall.Kill(helpers[0], syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !lines.Scan() || lines.Text() != "got term" {
		t.Fatalf("after SIGTERM: %q", lines.Text())
	}
	go io.Copy(io.Discard, pr)
	select {
	case err := <-done:
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != 5 {
			t.Fatalf("want exit 5 from the trap, got %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not end after SIGTERM")
	}
}

func TestDirConcurrentRunsInOneProcess(t *testing.T) {
	needRoot(t)
	roots := []string{makeRoot(t), makeRoot(t)}
	var wg sync.WaitGroup
	outs := make([]string, len(roots))
	errs := make([]error, len(roots))
	for i, root := range roots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out strings.Builder
			errs[i] = Run(context.Background(), Spec{
				Root: root, Args: []string{"/bin/sh", "-c", "touch /mine; ls /; hostname"},
				Hostname: "h" + string(rune('0'+i)), Stdout: &out,
			})
			outs[i] = out.String()
		}()
	}
	wg.Wait()
	for i := range roots {
		if errs[i] != nil {
			t.Fatalf("run %d: %v", i, errs[i])
		}
		want := "bin\ndev\netc\nmine\nproc\nsys\nh" + string(rune('0'+i)) + "\n"
		if outs[i] != want {
			t.Errorf("run %d output %q, want %q", i, outs[i], want)
		}
		if _, err := os.Stat(filepath.Join(roots[i], "mine")); err != nil {
			t.Errorf("run %d: %v", i, err)
		}
	}
}

// helperPids lists processes running as the runner's helper.
func helperPids(t *testing.T) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || strings.TrimRight(string(data), "\x00") != initMarker || !childOfThisProcess(e.Name()) {
			continue // another package's tests, run at the same time, have helpers too
		}
		var pid int
		for _, c := range e.Name() {
			pid = pid*10 + int(c-'0')
		}
		pids = append(pids, pid)
	}
	return pids
}

// childOfThisProcess reports whether /proc/PID's parent is this test process.
func childOfThisProcess(pid string) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return false
	}
	// pid (comm) state ppid ...: comm may hold spaces, so split after its closing parenthesis.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 1 && fields[1] == strconv.Itoa(os.Getpid())
}
