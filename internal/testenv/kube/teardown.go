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
	ppid   int
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
		table[pid] = procInfo{ppid: ppid, zombie: rest[0] == "Z", mntID: mnt}
	}
	return table
}

// nodeProcesses lists the live processes of the node: everything in its mount
// namespace or its cgroups, and their descendants (containers have mount
// namespaces of their own; shims leave containerd's process group).
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

// killNode SIGKILLs the node's processes until none is left.
func killNode(mntID string, cg *cgroupRoot) error {
	var live []int
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		live = nodeProcesses(mntID, cg)
		if len(live) == 0 {
			return nil
		}
		for _, pid := range live {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return fmt.Errorf("kube: node processes %v survive SIGKILL", live)
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
