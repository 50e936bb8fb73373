package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cgroupRoot is where the cgroup file systems are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// CgroupLimits are the container limits a pod runs under (zero: no limit).
type CgroupLimits struct {
	// Memory is the memory limit in bytes (memory.max, memory.limit_in_bytes).
	Memory int64
	// Pids is the maximal number of tasks, threads included (pids.max).
	Pids int
}

// Cgroup is a cgroup made for one test, removed at its end. A Pod with Cgroup set runs in it,
// as a container runtime starts a container in the pod's cgroup.
type Cgroup struct {
	// dirs are the cgroup directories: one on cgroup v2, one per controller on v1.
	dirs []string
	v2   bool
}

// NewCgroup makes a cgroup with limits under the machine's cgroup hierarchy (v2, or the v1
// memory and pids controllers). It skips the test where the machine has no such controllers
// or they cannot be written.
func NewCgroup(t testing.TB, limits CgroupLimits) *Cgroup {
	t.Helper()
	requireRoot(t, "NewCgroup")
	name := "kiln-test-" + randomHex(t, 6)
	cg := &Cgroup{}
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
		cg.v2 = true
		ctrls, _ := os.ReadFile(filepath.Join(cgroupRoot, "cgroup.subtree_control"))
		for _, want := range []string{"memory", "pids"} {
			if !strings.Contains(string(ctrls), want) {
				t.Skipf("testenv: cgroup v2 controller %s is not enabled in %s/cgroup.subtree_control", want, cgroupRoot)
			}
		}
		cg.dirs = []string{filepath.Join(cgroupRoot, name)}
	} else {
		for _, c := range []string{"memory", "pids"} {
			if _, err := os.Stat(filepath.Join(cgroupRoot, c, "cgroup.procs")); err != nil {
				t.Skipf("testenv: no cgroup v1 %s controller at %s/%s: %v", c, cgroupRoot, c, err)
			}
			cg.dirs = append(cg.dirs, filepath.Join(cgroupRoot, c, name))
		}
	}
	for _, d := range cg.dirs {
		if err := os.Mkdir(d, 0o755); err != nil {
			cg.remove(t)
			t.Skipf("testenv: cannot make cgroup %s: %v", d, err)
		}
	}
	t.Cleanup(func() { cg.remove(t) })
	set := func(file, value string) {
		for _, d := range cg.dirs {
			p := filepath.Join(d, file)
			if _, err := os.Stat(p); err != nil {
				continue // the other v1 controller's file
			}
			if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
				t.Fatalf("testenv: set %s to %s: %v", p, value, err)
			}
		}
	}
	if limits.Memory > 0 {
		mem := strconv.FormatInt(limits.Memory, 10)
		if cg.v2 {
			set("memory.max", mem)
			set("memory.swap.max", "0")
		} else {
			set("memory.limit_in_bytes", mem)
			if _, err := os.Stat(filepath.Join(cg.dirs[0], "memory.memsw.limit_in_bytes")); err == nil {
				set("memory.memsw.limit_in_bytes", mem)
			}
		}
	}
	if limits.Pids > 0 {
		set("pids.max", strconv.Itoa(limits.Pids))
	}
	return cg
}

// procsFiles are the files a process writes "0" to in order to join the cgroup.
func (cg *Cgroup) procsFiles() []string {
	out := make([]string, len(cg.dirs))
	for i, d := range cg.dirs {
		out[i] = filepath.Join(d, "cgroup.procs")
	}
	return out
}

// OOMKills is how many processes of the cgroup the kernel's OOM killer killed.
func (cg *Cgroup) OOMKills(t testing.TB) int {
	t.Helper()
	for _, d := range cg.dirs {
		for _, f := range []string{"memory.events", "memory.oom_control"} {
			b, err := os.ReadFile(filepath.Join(d, f))
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				if k, v, ok := strings.Cut(line, " "); ok && k == "oom_kill" {
					n, _ := strconv.Atoi(strings.TrimSpace(v))
					return n
				}
			}
		}
	}
	return -1
}

// PidsRefused is how many forks the pids limit refused (pids.events "max"), -1 if unknown.
func (cg *Cgroup) PidsRefused(t testing.TB) int {
	t.Helper()
	for _, d := range cg.dirs {
		b, err := os.ReadFile(filepath.Join(d, "pids.events"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, " "); ok && k == "max" {
				n, _ := strconv.Atoi(strings.TrimSpace(v))
				return n
			}
		}
	}
	return -1
}

// remove kills what is left in the cgroup and removes its directories.
func (cg *Cgroup) remove(t testing.TB) {
	for _, d := range cg.dirs {
		if _, err := os.Stat(d); err != nil {
			continue
		}
		var err error
		for attempt := 0; attempt < 100; attempt++ {
			killAll(filepath.Join(d, "cgroup.procs"))
			if err = os.Remove(d); err == nil || errors.Is(err, os.ErrNotExist) {
				err = nil
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("testenv: remove cgroup %s: %v", d, err)
		}
	}
}

// killAll sends SIGKILL to every process listed in a cgroup.procs file.
func killAll(procs string) {
	b, err := os.ReadFile(procs)
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			if p, err := os.FindProcess(pid); err == nil {
				_ = p.Kill()
			}
		}
	}
}

// String names the cgroup's directories.
func (cg *Cgroup) String() string { return fmt.Sprint(cg.dirs) }
