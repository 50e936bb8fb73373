package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/testenv"
)

// TestFaultRunExhaustsLimits runs build pods under a container's limits (a cgroup with a
// memory limit and a pids limit, as a runtime gives a pod) with a RUN that fills memory and one
// that forks without end. Each build fails naming the RUN and why; the executor (pid 1 of the
// pod, in the same cgroup) survives to report it, exits with the RUN's code and pushes nothing.
func TestFaultRunExhaustsLimits(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")

	for _, c := range []struct {
		name   string
		limits testenv.CgroupLimits
		run    string
		want   []string
		check  func(t *testing.T, cg *testenv.Cgroup)
	}{
		{
			name:   "memory",
			limits: testenv.CgroupLimits{Memory: 256 * mib, Pids: 1000},
			// The string doubles until the kernel's OOM killer ends the shell.
			run:  `RUN echo filling-memory && s=aaaaaaaaaaaaaaaa && while true; do s="$s$s"; done`,
			want: []string{"Dockerfile:2", "RUN echo filling-memory", "non-zero code: 137", "killed by SIGKILL", "out of memory"},
			check: func(t *testing.T, cg *testenv.Cgroup) {
				if n := cg.OOMKills(t); n == 0 {
					t.Errorf("the OOM killer killed nothing in %s: the limit was not reached", cg)
				}
			},
		},
		{
			name:   "processes",
			limits: testenv.CgroupLimits{Memory: 1024 * mib, Pids: 128},
			// Background sleepers until fork fails; the shell then gives up.
			run:  `RUN echo forking && while true; do sleep 1000 & done`,
			want: []string{"Dockerfile:2", "RUN echo forking", "non-zero code"},
			check: func(t *testing.T, cg *testenv.Cgroup) {
				if n := cg.PidsRefused(t); n == 0 {
					t.Errorf("no fork was refused in %s: the limit was not reached", cg)
				}
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			cg := testenv.NewCgroup(t, c.limits)
			ctx := writeContext(t, map[string]string{"Dockerfile": "FROM " + base + "\n" + c.run + "\nRUN echo after > /after\n"})
			dest := reg.Ref("it/limits:" + c.name)
			p := registryPod(t, ctx, "--destination", dest, "--insecure", "--insecure-pull")
			p.Cgroup = cg
			p.Timeout = 3 * time.Minute
			res := testenv.RunPod(t, p)
			if res.ExitCode == 0 {
				t.Fatalf("the build succeeded:\n%s", res.Stderr)
			}
			last := lastLine(res.Stderr)
			t.Logf("exit code %d; the user sees: %s", res.ExitCode, last)
			if !strings.HasPrefix(last, "ERRO") {
				t.Errorf("the executor did not report the failure itself (last line %q):\n%s", last, res.Stderr)
			}
			for _, want := range c.want {
				if !strings.Contains(last, want) {
					t.Errorf("the error does not say %q: %s", want, last)
				}
			}
			for _, bad := range []string{"panic", "fatal error", "runtime:"} {
				if strings.Contains(res.Stderr, bad) {
					t.Errorf("the executor crashed (%q):\n%s", bad, res.Stderr)
				}
			}
			if strings.Contains(res.Stderr, "RUN echo after") {
				t.Errorf("the build went on after the failing RUN:\n%s", res.Stderr)
			}
			c.check(t, cg)
			notPushed(t, reg, dest)
		})
	}

	// A RUN whose failure to fork is ignored leaves its background processes: they are killed
	// with it, and they must not keep holding the pod's pids once they are gone (the executor
	// is pid 1 of the pod, so orphans are its to reap): the next RUN forks again.
	t.Run("processes left behind", func(t *testing.T) {
		cg := testenv.NewCgroup(t, testenv.CgroupLimits{Memory: 1024 * mib, Pids: 128})
		ctx := writeContext(t, map[string]string{"Dockerfile": "FROM " + base + `
RUN (while true; do sleep 1000 & done) 2>/dev/null || echo fork-refused-$((6*7))
RUN for i in 1 2 3 4 5 6 7 8 9 10; do sleep 0 & done; wait; echo forked-again > /after
`})
		dest := reg.Ref("it/limits:left-behind")
		p := registryPod(t, ctx, "--destination", dest, "--insecure", "--insecure-pull")
		p.Cgroup = cg
		p.Timeout = 3 * time.Minute
		res := runPodWant(t, p, true)
		if !strings.Contains(res.Stdout, "fork-refused-42") {
			t.Errorf("the first RUN was not refused a fork:\n%s", res.Stdout)
		}
		if e := file(t, testenv.ExportImage(t, reg, dest), "after"); string(e.Content) != "forked-again\n" {
			t.Errorf("/after = %q", e.Content)
		}
	})
}
