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

// fixedPaths are the places that containerd, its shims, CNI and the kubelet
// use whatever their configuration says. Inside the node's mount namespace
// each is a bind mount of a directory of the test's own, so nothing lands in
// the host's copy; the host only sees the (empty) mount points.
var fixedPaths = []string{
	"/run/containerd",     // shim sockets (/run/containerd/s), runc state
	"/run/netns",          // CRI's pod network namespaces
	"/var/lib/cni",        // CNI result cache
	"/var/log/containers", // the kubelet's legacy log symlinks
	"/var/lib/kubelet",    // the device-plugin socket
}

// nodeNamespace is a private mount namespace that the node's daemons share:
// their mounts (overlay roots, netns, volumes) never reach the host and go
// away with it.
type nodeNamespace struct {
	holder *process
	procs  []string // cgroup.procs files every process of the node joins
	mntID  string   // readlink of /proc/PID/ns/mnt, to find its processes
	// nsFile keeps the namespace alive while we look for its processes by
	// mntID: a freed namespace's id could be reused by an unrelated one.
	nsFile  *os.File
	created []string // mount points made on the host, removed at the end
}

// newNodeNamespace starts the namespace's holder (unshare + sleep) in the
// daemons cgroup of cg and bind mounts dir/<path> over each fixed path
// inside it.
func newNodeNamespace(l *life, dir string, cg *cgroupRoot) (*nodeNamespace, error) {
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return nil, skipf("kube: unshare is not installed (apt-get install util-linux): %v", err)
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		return nil, skipf("kube: nsenter is not installed (apt-get install util-linux): %v", err)
	}
	n := &nodeNamespace{procs: cg.daemonProcs()}
	for _, p := range fixedPaths {
		if _, err := os.Stat(p); os.IsNotExist(err) {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return nil, fmt.Errorf("kube: mount point %s: %w", p, err)
			}
			n.created = append(n.created, p)
		}
	}
	l.onStop(n.removeMountPoints)
	n.holder, err = l.start("mount-namespace", filepath.Join(dir, "nodens.log"),
		n.inCgroup(unshare, "--mount", "--propagation", "slave", "sleep", "infinity")...)
	if err != nil {
		return nil, err
	}
	l.onStop(func() { n.holder.stop(time.Second) })
	if err := n.waitUnshared(); err != nil {
		return nil, err
	}
	for _, p := range fixedPaths {
		src := filepath.Join(dir, strings.ReplaceAll(strings.Trim(p, "/"), "/", "-"))
		if err := os.MkdirAll(src, 0o755); err != nil {
			return nil, err
		}
		if out, err := exec.Command("nsenter", n.enter("mount", "--bind", src, p)...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("kube: bind %s over %s in the node's mount namespace: %v: %s", src, p, err, out)
		}
	}
	return n, nil
}

// waitUnshared waits until the holder runs in a mount namespace other than
// ours (unshare has exec'd sleep) and records its id.
func (n *nodeNamespace) waitUnshared() error {
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return fmt.Errorf("kube: %w", err)
	}
	path := "/proc/" + strconv.Itoa(n.holder.cmd.Process.Pid) + "/ns/mnt"
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if n.holder.exited() {
			return n.holder.exitError()
		}
		if id, err := os.Readlink(path); err == nil && id != self {
			f, err := os.Open(path)
			if err != nil {
				return fmt.Errorf("kube: %w", err)
			}
			n.mntID, n.nsFile = id, f
			return nil
		}
	}
	return fmt.Errorf("kube: unshare --mount (pid %d) made no mount namespace within 10s", n.holder.cmd.Process.Pid)
}

// enter is nsenter's arguments to run argv in the namespace.
func (n *nodeNamespace) enter(argv ...string) []string {
	return append([]string{"--mount=/proc/" + strconv.Itoa(n.holder.cmd.Process.Pid) + "/ns/mnt", "--"}, argv...)
}

// command is the command line that runs argv in the namespace and the
// daemons cgroup (sh and nsenter exec, so the process started is the daemon
// itself).
func (n *nodeNamespace) command(argv ...string) []string {
	return n.inCgroup(append([]string{"nsenter"}, n.enter(argv...)...)...)
}

// joinCgroup is a shell script that writes its pid into each cgroup.procs
// file given before "--", then execs the rest: whatever it starts (shims,
// containers) stays in the node's cgroups, where teardown finds it even after
// a killed test.
const joinCgroup = `while [ "$1" != -- ]; do echo $$ > "$1" || exit 1; shift; done; shift; exec "$@"`

// inCgroup wraps argv so that it runs in the daemons cgroup.
func (n *nodeNamespace) inCgroup(argv ...string) []string {
	cmd := append([]string{"sh", "-c", joinCgroup, "sh"}, n.procs...)
	return append(append(cmd, "--"), argv...)
}

// release lets the namespace go once no process is left in it.
func (n *nodeNamespace) release() {
	if n.nsFile != nil {
		n.nsFile.Close()
		n.nsFile = nil
	}
}

// removeMountPoints removes the mount points this namespace created on the
// host, if still empty.
func (n *nodeNamespace) removeMountPoints() {
	for i := len(n.created) - 1; i >= 0; i-- {
		_ = syscall.Rmdir(n.created[i])
	}
}
