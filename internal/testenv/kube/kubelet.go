package kube

import (
	"net"
	"os"
	"path/filepath"
)

// kubeletConfig is the node's KubeletConfiguration. Each setting that
// differs from a usual node is there for a reason of this machine:
// cgroupfs under a cgroupRoot of our own (cgroup v1, no systemd), no swap
// check, oomScoreAdj 0 (no CAP_SYS_RESOURCE), no iptables chains in the
// host's tables, no fixed ports (healthz and read-only off), logs and volume
// plugins under dir, eviction and image GC thresholds a test never reaches.
func kubeletConfig(a *APIServer, dir, sock, cgroupRoot string, ip net.IP, port int, certFile, keyFile string) map[string]any {
	return map[string]any{
		"apiVersion":        "kubelet.config.k8s.io/v1beta1",
		"kind":              "KubeletConfiguration",
		"address":           ip.String(),
		"port":              port,
		"readOnlyPort":      0,
		"healthzPort":       0,
		"tlsCertFile":       certFile,
		"tlsPrivateKeyFile": keyFile,
		"authentication": map[string]any{
			"anonymous": map[string]any{"enabled": false},
			"webhook":   map[string]any{"enabled": true},
			"x509":      map[string]any{"clientCAFile": a.CAFile},
		},
		"authorization":            map[string]any{"mode": "Webhook"},
		"containerRuntimeEndpoint": "unix://" + sock,
		"cgroupDriver":             "cgroupfs",
		"cgroupRoot":               cgroupRoot,
		"cgroupsPerQOS":            true,
		"failSwapOn":               false,
		"oomScoreAdj":              0,
		"makeIPTablesUtilChains":   false,
		"podLogsDir":               filepath.Join(dir, "pod-logs"),
		"volumePluginDir":          filepath.Join(dir, "volume-plugins"),
		"resolvConf":               "/etc/resolv.conf",
		"hairpinMode":              "hairpin-veth",
		"serializeImagePulls":      false,
		// Ready is reported at the next status update: keep it short.
		"nodeStatusUpdateFrequency":   "2s",
		"imageGCHighThresholdPercent": 100,
		"imageGCLowThresholdPercent":  99,
		"evictionHard": map[string]string{
			"memory.available": "50Mi", "nodefs.available": "1%", "nodefs.inodesFree": "1%", "imagefs.available": "1%",
		},
	}
}

// startKubelet runs the kubelet as node nodeName at ip, authenticating as
// system:node:NAME, serving on a free port with a certificate of our CA.
func startKubelet(l *life, ns *nodeNamespace, a *APIServer, dir, bin, sock, cgroupRoot, nodeName string, ip net.IP) (*process, error) {
	kc, err := a.componentKubeconfig("kubelet", "system:node:"+nodeName, "system:nodes")
	if err != nil {
		return nil, err
	}
	serving, err := a.ca.issue(certSpec{commonName: nodeName, server: true, ips: []net.IP{ip}, dnsNames: []string{nodeName}})
	if err != nil {
		return nil, err
	}
	certFile, keyFile, err := serving.write(a.pki, "kubelet-serving")
	if err != nil {
		return nil, err
	}
	port, err := freePort(ip.String())
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "kubelet")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "kubelet.json")
	if err := writeJSON(cfg, kubeletConfig(a, dir, sock, cgroupRoot, ip, port, certFile, keyFile)); err != nil {
		return nil, err
	}
	return startDaemon(l, ns, dir, bin, "kubelet",
		"--config="+cfg,
		"--kubeconfig="+kc,
		"--root-dir="+root,
		"--hostname-override="+nodeName,
		"--node-ip="+ip.String(),
		"--v=1")
}
