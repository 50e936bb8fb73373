package kube

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// guardedSysctls are host settings that the kubelet (kernel tunables), the
// bridge plugin (forwarding) and kube-proxy (conntrack) may change; the
// cluster puts back whatever changed.
var guardedSysctls = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
	"net/ipv4/ip_forward", "net/ipv4/conf/all/forwarding", "net/ipv6/conf/all/forwarding",
	"net/ipv4/conf/all/route_localnet",
	"net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables",
	"net/netfilter/nf_conntrack_max", "net/netfilter/nf_conntrack_tcp_timeout_established",
	"net/netfilter/nf_conntrack_tcp_timeout_close_wait", "net/netfilter/nf_conntrack_tcp_be_liberal",
	"net/netfilter/nf_conntrack_udp_timeout", "net/netfilter/nf_conntrack_udp_timeout_stream",
}

// sysctls is a snapshot of /proc/sys values, by path under /proc/sys.
type sysctls map[string]string

// snapshotSysctls reads the guarded settings that exist on this kernel.
func snapshotSysctls() sysctls {
	s := sysctls{}
	for _, k := range guardedSysctls {
		if b, err := os.ReadFile(filepath.Join("/proc/sys", k)); err == nil {
			s[k] = strings.TrimSpace(string(b))
		}
	}
	return s
}

// restore writes back every value that differs now and says which.
func (s sysctls) restore() (changed []string, err error) {
	now := snapshotSysctls()
	for k, v := range s {
		if now[k] == v {
			continue
		}
		changed = append(changed, fmt.Sprintf("%s %s->%s", k, v, now[k]))
		if werr := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); werr != nil {
			err = fmt.Errorf("kube: restore /proc/sys/%s to %s: %w", k, v, werr)
		}
	}
	return changed, err
}

// procInfo is what teardown needs of a process.
type procInfo struct {
	ppid int
	// zombie: the process has exited and holds nothing (no memory, no
	// namespace, no cgroup) but its pid, until its parent reaps it. A thread
	// group whose leader is a zombie while other threads still run is not.
	zombie bool
	mntID  string
}

// processTable reads every process's parent, state and mount namespace.
func processTable() map[int]procInfo {
	table := map[int]procInfo{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at the last ')'.
		rest := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(rest) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(rest[1])
		mnt, _ := os.Readlink("/proc/" + e.Name() + "/ns/mnt")
		zombie := rest[0] == "Z" && threads(pid) <= 1
		table[pid] = procInfo{ppid: ppid, zombie: zombie, mntID: mnt}
	}
	return table
}

// threads counts the live threads of process pid.
func threads(pid int) int {
	tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	return len(tasks)
}

// nodeProcesses lists the live processes of the node: everything in its mount
// namespace or its cgroups, and their descendants (containers have mount
// namespaces of their own; shims leave containerd's process group). A zombie
// is not live: it has exited; reaping it is its parent's business (pid 1's,
// for the double-forked shims and orphaned containers).
func nodeProcesses(mntID string, cg *cgroupRoot) []int {
	table := processTable()
	member := map[int]bool{}
	if cg != nil {
		member = cg.pids()
	}
	for pid, p := range table {
		if mntID != "" && p.mntID == mntID {
			member[pid] = true
		}
	}
	for changed := true; changed; {
		changed = false
		for pid, p := range table {
			if !member[pid] && member[p.ppid] {
				member[pid], changed = true, true
			}
		}
	}
	var live []int
	for pid := range member {
		if p, ok := table[pid]; ok && !p.zombie && pid != os.Getpid() {
			live = append(live, pid)
		}
	}
	return live
}

// killTimeout bounds how long teardown waits for the node's processes to
// die: SIGKILLed processes end within milliseconds unless stuck in the
// kernel (an overlay or a FUSE mount being torn down).
const killTimeout = 20 * time.Second

// killNode kills the node's processes and waits, up to killTimeout, until
// none is live: all of its cgroups at once through cgroup.kill (cgroup v2),
// then a SIGKILL to each process left in its mount namespace or cgroups.
// "Gone" is nodeProcesses' definition (no live process in the namespace, the
// cgroups or below them) and, where v2 says so, an unpopulated cgroup tree.
func killNode(mntID string, cg *cgroupRoot) error {
	var live []int
	for deadline := time.Now().Add(killTimeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cg != nil {
			cg.kill()
		}
		live = nodeProcesses(mntID, cg)
		if len(live) == 0 && (cg == nil || !cg.populated()) {
			return nil
		}
		for _, pid := range live {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return fmt.Errorf("kube: node processes %v survive SIGKILL for %s", live, killTimeout)
}

// nftTables lists the host's nftables tables ("ip kube-proxy", ...).
func nftTables() ([]string, error) {
	out, err := exec.Command("nft", "list", "tables").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("kube: nft list tables: %v: %s", err, out)
	}
	var tables []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "table" {
			tables = append(tables, f[1]+" "+f[2])
		}
	}
	return tables, nil
}

// deleteNftTable removes one table ("ip kube-proxy") if present.
func deleteNftTable(table string) error {
	tables, err := nftTables()
	if err != nil {
		return err
	}
	for _, t := range tables {
		if t == table {
			args := append([]string{"delete", "table"}, strings.Fields(table)...)
			if out, err := exec.Command("nft", args...).CombinedOutput(); err != nil {
				return fmt.Errorf("kube: nft delete table %s: %v: %s", table, err, out)
			}
		}
	}
	return nil
}

// deleteLink removes a network interface (the CNI bridge) if present.
func deleteLink(name string) error {
	if _, err := os.Stat("/sys/class/net/" + name); os.IsNotExist(err) {
		return nil
	}
	if out, err := exec.Command("ip", "link", "delete", name).CombinedOutput(); err != nil {
		return fmt.Errorf("kube: ip link delete %s: %v: %s", name, err, out)
	}
	return nil
}
