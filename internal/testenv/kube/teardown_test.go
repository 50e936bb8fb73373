package kube

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKillNode runs what a node leaves at teardown, without a cluster: processes in the
// node's cgroups that fork (as shims start containers), a process tree in a mount namespace
// of its own outside those cgroups, and a zombie whose parent is killed (reparented to pid 1,
// which reaps it when it likes). killNode must return once nothing of it lives, within its
// bound, and the cgroups must then be removable.
func TestKillNode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("kube: cgroups and mount namespaces need root")
	}
	cg, err := makeCgroupRoot(fmt.Sprintf("/kiln-killnode-test-%d", os.Getpid()))
	if err != nil {
		fatalOrSkip(t, err)
	}
	t.Cleanup(func() { _ = killNode("", cg); _ = cg.remove() })
	procs := cg.daemonProcs()
	join := `for f in ` + strings.Join(procs, " ") + `; do echo $$ > $f || exit 1; done; `
	var started []*exec.Cmd
	for _, script := range []string{
		join + `while :; do sleep 100 & sleep 0.05; done`, // forks all the time
		join + `(exit 0) & exec sleep 100`,                // a zombie child under a live parent
	} {
		started = append(started, startReaped(t, "sh", "-c", script))
	}
	ns := startReaped(t, "unshare", "--mount", "--propagation", "private", "sh", "-c", "sleep 100 & sleep 100 & wait")
	started = append(started, ns)
	mntID := waitNewMountNamespace(t, ns.Process.Pid)
	pin, err := os.Open("/proc/" + strconv.Itoa(ns.Process.Pid) + "/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	defer pin.Close()
	time.Sleep(300 * time.Millisecond) // let the children start
	if n := len(nodeProcesses(mntID, cg)); n < 6 {
		t.Fatalf("only %d node processes before the kill, want at least 6", n)
	}

	start := time.Now()
	if err := killNode(mntID, cg); err != nil {
		t.Fatal(err)
	}
	t.Logf("killNode took %s", time.Since(start).Round(time.Millisecond))
	if live := nodeProcesses(mntID, cg); len(live) > 0 {
		t.Errorf("processes %v of the node live after killNode", live)
	}
	if cg.populated() {
		t.Errorf("the node's cgroups are still populated after killNode")
	}
	if err := cg.remove(); err != nil {
		t.Errorf("remove the node's cgroups after killNode: %v", err)
	}
	table := processTable()
	for _, c := range started {
		if p, ok := table[c.Process.Pid]; ok && !p.zombie {
			t.Errorf("%s (pid %d) lives after killNode", c.Path, c.Process.Pid)
		}
	}
}

// startReaped starts argv in a process group of its own and reaps it when it ends.
func startReaped(t *testing.T, argv ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait() }()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	return cmd
}

// waitNewMountNamespace waits until pid runs in a mount namespace other than ours.
func waitNewMountNamespace(t *testing.T, pid int) string {
	t.Helper()
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if id, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid)); err == nil && id != self {
			return id
		}
	}
	t.Fatalf("pid %d made no mount namespace within 5s", pid)
	return ""
}
