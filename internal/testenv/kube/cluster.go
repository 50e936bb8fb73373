package kube

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// NodeName is the name of the cluster's one node.
const NodeName = "kiln-node"

// clusterLock lets one cluster run on the machine at a time: kube-proxy's
// nftables tables and the CNI bridge have fixed names.
const clusterLock = "/var/cache/kiln/kube-cluster.lock"

// ClusterOptions configure StartCluster.
type ClusterOptions struct {
	// InsecureRegistries are registries ("HOST:PORT", e.g. a testenv registry
	// bound to HostIP) that the node pulls images from over plain HTTP.
	// Cluster.AllowInsecureRegistry adds more later.
	InsecureRegistries []string
}

// Cluster is a one-node Kubernetes cluster on this machine: the API server
// (embedded: URL, AdminKubeconfig, Client, ServiceAccountKubeconfig ...),
// kube-controller-manager, kube-scheduler, and a node made of containerd,
// runc, the kubelet and kube-proxy.
type Cluster struct {
	*APIServer
	// NodeIP is the node's address, reachable from pods (this machine's
	// HostIP). Bind registries and servers that pods use there.
	NodeIP string
	// BinDir holds the Kubernetes binaries, kubectl included.
	BinDir string
	// Dir holds the cluster's state and logs (kubelet.log, containerd.log, ...).
	Dir string

	life *life
	rt   *criRuntime
	ns   *nodeNamespace
	cg   *cgroupRoot
}

// StartCluster starts a one-node cluster and waits until the node is Ready
// and schedulable and the default service account exists; it stops every
// process it started at the test's cleanup and puts the host back as it was.
// One cluster runs on the machine at a time (others wait; in a binary that
// uses SharedCluster, StartCluster fails instead). It skips the
// test when the machine cannot run a kubelet (not root, no cgroups, tools
// missing), naming what is missing.
func StartCluster(t testing.TB, o ClusterOptions) *Cluster {
	t.Helper()
	if shared.clusterOn.Load() {
		t.Fatal("kube: this test binary already runs SharedCluster, and one cluster runs per machine: use SharedCluster in every test of the binary")
	}
	l := testLife(t)
	c, err := startCluster(l, o)
	if err != nil {
		fatalOrSkip(t, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range []string{"kubelet.log", "containerd.log"} {
				t.Logf("kube: end of %s:\n%s", name, logTail(filepath.Join(c.Dir, name)))
			}
		}
	})
	return c
}

// requireNode checks what a node needs on this machine.
func requireNode() error {
	if os.Geteuid() != 0 {
		return skipf("kube: a kubelet needs root (running as uid %d)", os.Geteuid())
	}
	tools := map[string]string{"containerd": "containerd", "ctr": "containerd", "runc": "runc",
		"nft": "nftables", "ip": "iproute2", "unshare": "util-linux", "nsenter": "util-linux"}
	for tool, pkg := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return skipf("kube: %s is not installed (apt-get install %s)", tool, pkg)
		}
	}
	if _, err := os.Stat("/dev/kmsg"); err != nil {
		return skipf("kube: the kubelet's OOM watcher reads /dev/kmsg, which this machine lacks: %v", err)
	}
	if fs, err := os.ReadFile("/proc/filesystems"); err != nil || !strings.Contains(string(fs), "\toverlay\n") {
		return skipf("kube: containerd's overlayfs snapshotter needs the overlay filesystem, which this kernel lacks")
	}
	for _, plugin := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(cniBinDir, plugin)); err != nil {
			return skipf("kube: CNI plugin %s missing (apt-get install containernetworking-plugins): %v", plugin, err)
		}
	}
	return nil
}

// startCluster starts the cluster within l.
func startCluster(l *life, o ClusterOptions) (*Cluster, error) {
	start := time.Now()
	if err := requireNode(); err != nil {
		return nil, err
	}
	ip, err := HostIP()
	if err != nil {
		return nil, skipf("kube: the node needs an address pods can reach: %v", err)
	}
	bin, err := binDir(l.logf, "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy")
	if err != nil {
		return nil, err
	}
	c := &Cluster{NodeIP: ip.String(), BinDir: bin, Dir: l.dir, life: l}
	l.env = noProxyEnv(c.NodeIP)
	if err := c.claimHost(); err != nil {
		return nil, err
	}
	if err := c.startServers(ip); err != nil {
		return nil, err
	}
	for _, host := range o.InsecureRegistries {
		if err := c.rt.allowPlainHTTP(host); err != nil {
			return nil, err
		}
	}
	if err := c.startNode(ip); err != nil {
		return nil, err
	}
	if err := c.waitReady(); err != nil {
		return nil, err
	}
	l.logf("kube: cluster ready in %s: node %s at %s, API server %s, state in %s",
		time.Since(start).Round(time.Millisecond), NodeName, c.NodeIP, c.URL, c.Dir)
	return c, nil
}

// claimHost takes the machine-wide lock and prepares the host: a snapshot of
// the settings the node may change, a cgroup root, the node's mount
// namespace. Its undo steps put everything back after the last process of
// the node is gone.
func (c *Cluster) claimHost() error {
	l := c.life
	if err := os.MkdirAll(filepath.Dir(clusterLock), 0o755); err != nil {
		return err
	}
	waited := time.Now()
	unlock, err := lockFile(clusterLock, func() {
		l.logf("kube: waiting for the cluster of another test process to stop (one per machine; lock %s)", clusterLock)
	})
	if err != nil {
		return err
	}
	l.onStop(unlock)
	if d := time.Since(waited); d > time.Second {
		l.logf("kube: waited %s for the other cluster", d.Round(time.Second))
	}
	if err := reapKilledCluster(l.logf); err != nil {
		return err
	}
	rec := &nodeRecord{PID: os.Getpid(), Cgroup: "/kiln-node-" + strconv.Itoa(os.Getpid()), Sysctls: snapshotSysctls()}
	l.onStop(func() { c.restoreHost(rec.Sysctls) })
	if c.cg, err = makeCgroupRoot(rec.Cgroup); err != nil {
		return err
	}
	if err := rec.write(); err != nil { // before the node changes anything else
		return err
	}
	if c.ns, err = newNodeNamespace(l, l.dir, c.cg); err != nil {
		return err
	}
	rec.MountPoints = c.ns.created
	if err := rec.write(); err != nil {
		return err
	}
	l.onStop(func() {
		if err := killNode(c.ns.mntID, c.cg); err != nil {
			l.fail(err)
		}
		c.ns.release()
	})
	return nil
}

// restoreHost undoes what the node did to the host, once its processes are
// gone. The record stays if something could not be undone: the next cluster
// tries again.
func (c *Cluster) restoreHost(saved sysctls) {
	l := c.life
	var errs []error
	if c.cg != nil {
		errs = append(errs, c.cg.remove())
	}
	errs = append(errs, deleteLink(cniBridge), deleteNftTable("ip kube-proxy"), deleteNftTable("ip6 kube-proxy"))
	changed, err := saved.restore()
	errs = append(errs, err)
	if len(changed) > 0 {
		l.logf("kube: restored host settings the node changed: %s", strings.Join(changed, ", "))
	}
	if err := errors.Join(errs...); err != nil {
		l.fail(err)
		return
	}
	if err := os.Remove(nodeRecordFile); err != nil && !os.IsNotExist(err) {
		l.fail(fmt.Errorf("kube: %w", err))
	}
}

// startServers starts etcd and kube-apiserver, and meanwhile builds the pause
// image and starts containerd.
func (c *Cluster) startServers(ip net.IP) error {
	var wg sync.WaitGroup
	var apiErr, rtErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		c.APIServer, apiErr = startAPIServer(c.life, apiOptions{bindIP: ip.String(), hostIP: ip})
	}()
	go func() {
		defer wg.Done()
		pause, err := buildPauseImage(c.Dir)
		if err != nil {
			rtErr = err
			return
		}
		c.rt, rtErr = startContainerd(c.life, c.ns, c.Dir, pause)
	}()
	wg.Wait()
	if apiErr != nil {
		return apiErr
	}
	return rtErr
}

// startNode starts the controllers, the kubelet and kube-proxy.
func (c *Cluster) startNode(ip net.IP) error {
	if _, err := startControllers(c.life, c.ns, c.APIServer, c.Dir, c.BinDir); err != nil {
		return err
	}
	if _, err := startKubelet(c.life, c.ns, c.APIServer, c.Dir, c.BinDir, c.rt.sock, c.cg.name, NodeName, ip); err != nil {
		return err
	}
	_, err := startKubeProxy(c.life, c.ns, c.APIServer, c.Dir, c.BinDir, NodeName)
	return err
}

// waitReady waits until the node is Ready without a NoSchedule taint and
// the default service account exists, failing early if a daemon exits.
func (c *Cluster) waitReady() error {
	client, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	start, state := time.Now(), "not registered"
	for {
		if p := c.exitedDaemon(); p != nil {
			return p.exitError()
		}
		node, err := client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err == nil {
			state = nodeState(node)
			if state == "" {
				_, err = client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
				if err == nil {
					c.life.logf("kube: node %s Ready and schedulable %s after the daemons started", NodeName, time.Since(start).Round(time.Millisecond))
					return nil
				}
				state = "no default service account yet"
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube: node %s not ready within %s (%s); kubelet log %s:\n%s",
				NodeName, readyTimeout, state, filepath.Join(c.Dir, "kubelet.log"), logTail(filepath.Join(c.Dir, "kubelet.log")))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// nodeState says why node cannot take pods yet ("" when it can).
func nodeState(node *corev1.Node) string {
	ready := false
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			if cond.Status != corev1.ConditionTrue {
				return fmt.Sprintf("Ready=%s: %s", cond.Status, cond.Message)
			}
			ready = true
		}
	}
	if !ready {
		return "no Ready condition yet"
	}
	for _, taint := range node.Spec.Taints {
		if taint.Effect == corev1.TaintEffectNoSchedule || taint.Effect == corev1.TaintEffectNoExecute {
			return "tainted " + taint.Key
		}
	}
	return ""
}

// noProxyEnv keeps a proxy of the environment (a CI's HTTPS_PROXY) out of
// the cluster's own traffic: the API server, the kubelet, the registries on
// the node address, Services and pods.
func noProxyEnv(nodeIP string) []string {
	ours := strings.Join([]string{nodeIP, "127.0.0.1", "localhost", ServiceCIDR, PodCIDR}, ",")
	var env []string
	for _, k := range []string{"NO_PROXY", "no_proxy"} {
		v := os.Getenv(k)
		if v != "" {
			v += ","
		}
		env = append(env, k+"="+v+ours)
	}
	return env
}

// exitedDaemon returns a process of the cluster that has ended, if any.
func (c *Cluster) exitedDaemon() *process {
	c.life.mu.Lock()
	defer c.life.mu.Unlock()
	for _, p := range c.life.procs {
		if p.exited() {
			return p
		}
	}
	return nil
}

// AllowInsecureRegistry lets the node pull from host ("HOST:PORT") over plain
// HTTP, from the next pull on.
func (c *Cluster) AllowInsecureRegistry(host string) error {
	return c.rt.allowPlainHTTP(host)
}

// Namespace creates a namespace for the test (see APIServer.Namespace) and
// waits for its default service account, without which no pod is admitted.
func (c *Cluster) Namespace(t testing.TB) string {
	t.Helper()
	ns := c.APIServer.Namespace(t)
	client := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		_, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return ns
		}
		select {
		case <-ctx.Done():
			t.Fatalf("kube: no default service account in namespace %s after a minute: %v", ns, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// RSS sums the resident memory of every process of the cluster (etcd, the
// daemons, containerd's shims and the containers), in bytes.
func (c *Cluster) RSS() int64 {
	pids := map[int]bool{}
	c.life.mu.Lock()
	for _, p := range c.life.procs {
		if !p.exited() {
			pids[p.cmd.Process.Pid] = true
		}
	}
	c.life.mu.Unlock()
	for _, pid := range nodeProcesses(c.ns.mntID, c.cg) {
		pids[pid] = true
	}
	var total int64
	for pid := range pids {
		total += rssOf(pid)
	}
	return total
}

// rssOf reads VmRSS of a process, in bytes (0 if gone).
func rssOf(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}
