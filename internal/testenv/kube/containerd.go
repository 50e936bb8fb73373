package kube

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// cniBinDir is where Debian's containernetworking-plugins installs the plugins.
const cniBinDir = "/usr/lib/cni"

// Pod network of the node (host-local IPAM on one bridge, no masquerade).
const (
	// PodCIDR is the range pod IPs come from.
	PodCIDR    = "10.98.0.0/24"
	cniBridge  = "kiln0"
	cniNetwork = "kiln"
)

// criRuntime is the node's containerd.
type criRuntime struct {
	dir     string // containerd's root, state and config
	sock    string // its gRPC socket
	hostDir string // registry hosts config (config_path)
	logFile string
}

// containerdConfig is containerd 1.6's configuration (version 2) for the
// node: all state under r.dir, CRI with our pause image, runc with cgroupfs,
// CNI from netDir, registries from r.hostDir. restrict_oom_score_adj: the
// machine may lack CAP_SYS_RESOURCE, and runc then fails every sandbox.
func (r *criRuntime) containerdConfig(netDir string) string {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) } // TOML basic string
	return fmt.Sprintf(`version = 2
root = %s
state = %s

[grpc]
  address = %s

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = %s
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = %q
    restrict_oom_score_adj = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          BinaryName = %s
          Root = %s
          SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = %s
      conf_dir = %s
      max_conf_num = 1
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = %s
`, q(filepath.Join(r.dir, "root")), q(filepath.Join(r.dir, "state")), q(r.sock),
		q(filepath.Join(r.dir, "opt")), pauseImage, q(mustLookPath("runc")), q(filepath.Join(r.dir, "runc")),
		q(cniBinDir), q(netDir), q(r.hostDir))
}

func mustLookPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return name
}

// cniConfig is the pod network: a bridge with the host as gateway, IPs from
// PodCIDR kept in ipamDir, hairpin so a pod reaches itself through a Service.
func cniConfig(ipamDir string) ([]byte, error) {
	return json.MarshalIndent(map[string]any{
		"cniVersion": "1.0.0",
		"name":       cniNetwork,
		"plugins": []any{map[string]any{
			"type":        "bridge",
			"bridge":      cniBridge,
			"isGateway":   true,
			"ipMasq":      false,
			"hairpinMode": true,
			"ipam": map[string]any{
				"type":    "host-local",
				"ranges":  [][]map[string]string{{{"subnet": PodCIDR}}},
				"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
				"dataDir": ipamDir,
			},
		}},
	}, "", "  ")
}

// startContainerd writes the configuration, runs containerd in the node's
// namespace, waits for its socket and imports the pause image.
func startContainerd(l *life, ns *nodeNamespace, dir, pauseTar string) (*criRuntime, error) {
	r := &criRuntime{dir: filepath.Join(dir, "containerd"), sock: filepath.Join(dir, "containerd.sock"),
		hostDir: filepath.Join(dir, "containerd", "certs.d"), logFile: filepath.Join(dir, "containerd.log")}
	netDir := filepath.Join(dir, "cni", "net.d")
	for _, d := range []string{r.dir, r.hostDir, netDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	conf, err := cniConfig(filepath.Join(dir, "cni", "ipam"))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(netDir, "10-kiln.conflist"), conf, 0o644); err != nil {
		return nil, err
	}
	cfgFile := filepath.Join(r.dir, "config.toml")
	if err := os.WriteFile(cfgFile, []byte(r.containerdConfig(netDir)), 0o644); err != nil {
		return nil, err
	}
	p, err := l.start("containerd", r.logFile, ns.command(mustLookPath("containerd"), "--config", cfgFile)...)
	if err != nil {
		return nil, err
	}
	l.onStop(func() { p.stop(2 * time.Second) })
	if err := r.waitReady(p); err != nil {
		return nil, err
	}
	if out, err := r.ctr("images", "import", pauseTar); err != nil {
		return nil, fmt.Errorf("kube: import pause image %s into containerd: %v: %s", pauseTar, err, out)
	}
	return r, nil
}

// ctr runs containerd's CLI against this containerd, in CRI's namespace.
func (r *criRuntime) ctr(args ...string) ([]byte, error) {
	return exec.Command("ctr", append([]string{"--address", r.sock, "--namespace", "k8s.io"}, args...)...).CombinedOutput()
}

// waitReady waits until containerd answers on its socket.
func (r *criRuntime) waitReady(p *process) error {
	var out []byte
	var err error
	for deadline := time.Now().Add(readyTimeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if p.exited() {
			return p.exitError()
		}
		if c, derr := net.Dial("unix", r.sock); derr != nil {
			continue
		} else {
			c.Close()
		}
		if out, err = r.ctr("version"); err == nil {
			return nil
		}
	}
	return fmt.Errorf("kube: containerd on %s not ready within %s (ctr version: %v: %s); log %s:\n%s",
		r.sock, readyTimeout, err, out, r.logFile, logTail(r.logFile))
}

// allowPlainHTTP makes containerd pull from registry host ("IP:PORT") over
// plain HTTP. containerd reads these files at every pull.
func (r *criRuntime) allowPlainHTTP(host string) error {
	if _, _, err := net.SplitHostPort(host); err != nil {
		return fmt.Errorf("kube: insecure registry %q is not HOST:PORT: %w", host, err)
	}
	dir := filepath.Join(r.hostDir, host)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	conf := fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", "http://"+host, "http://"+host)
	return os.WriteFile(filepath.Join(dir, "hosts.toml"), []byte(conf), 0o644)
}
