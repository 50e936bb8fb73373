package integration

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/testenv"
)

// TestInterruptDuringRun sends SIGTERM (what the kubelet sends) while a RUN sleeps: the
// executor must stop within seconds, exit non-zero, say it was interrupted, leave the sleeping
// RUN's later effects undone and push nothing.
func TestInterruptDuringRun(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	// The shell prints "sleeping-42"; the log line of the RUN shows "$((6*7))", so the signal
	// is sent only once the command itself runs.
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM " + base + `
RUN echo sleeping-$((6*7)) && sleep 30 && touch /after-sleep
RUN touch /second-run
`})
	dest := reg.Ref("it/interrupted:1")
	p := registryPod(t, ctx, "--destination", dest, "--insecure", "--insecure-pull")
	p.Signal = &testenv.PodSignal{Signal: syscall.SIGTERM, After: "sleeping-42"}
	p.Timeout = 2 * time.Minute
	start := time.Now()
	res := runPodWant(t, p, false)
	if res.SinceSignal > 10*time.Second {
		t.Errorf("the executor ran %s after SIGTERM, want it to stop within seconds", res.SinceSignal)
	}
	if time.Since(start) > 28*time.Second {
		t.Errorf("the pod took %s: the RUN's sleep 30 was not cut short", time.Since(start))
	}
	if !strings.Contains(res.Stderr, "interrupted") {
		t.Errorf("log does not say the build was interrupted:\n%s", res.Stderr)
	}
	for _, p := range []string{"after-sleep", "second-run"} {
		if _, err := os.Lstat(filepath.Join(res.Root, p)); err == nil {
			t.Errorf("/%s exists: the build went on after SIGTERM", p)
		}
	}
	notPushed(t, reg, dest)
}
