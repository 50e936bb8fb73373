package kube

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// componentKubeconfig issues a client certificate for user (in groups) and
// writes a kubeconfig for it into the API server's pki directory.
func (a *APIServer) componentKubeconfig(name, user string, groups ...string) (string, error) {
	kp, err := a.ca.issue(certSpec{commonName: user, orgs: groups, client: true})
	if err != nil {
		return "", err
	}
	path := filepath.Join(a.pki, name+".kubeconfig")
	return path, writeKubeconfig(path, kubeconfig{
		server: a.URL, caPEM: a.ca.certPEM, user: user, certPEM: kp.certPEM, keyPEM: kp.keyPEM,
	})
}

// startDaemon runs a Kubernetes daemon from bin in the node's namespace,
// logging to dir/NAME.log, stopped (SIGTERM, then the group is killed) at
// the end of l.
func startDaemon(l *life, ns *nodeNamespace, dir, bin, name string, args ...string) (*process, error) {
	logFile := filepath.Join(dir, name+".log")
	p, err := l.start(name, logFile, ns.command(append([]string{filepath.Join(bin, name)}, args...)...)...)
	if err != nil {
		return nil, err
	}
	l.onStop(func() { p.stop(2 * time.Second) })
	return p, nil
}

// startControllers runs kube-controller-manager and kube-scheduler, neither
// serving HTTPS (port 0), without leader election.
func startControllers(l *life, ns *nodeNamespace, a *APIServer, dir, bin string) ([]*process, error) {
	cm, err := a.componentKubeconfig("controller-manager", "system:kube-controller-manager")
	if err != nil {
		return nil, err
	}
	sched, err := a.componentKubeconfig("scheduler", "system:kube-scheduler")
	if err != nil {
		return nil, err
	}
	p1, err := startDaemon(l, ns, dir, bin, "kube-controller-manager",
		"--kubeconfig="+cm,
		"--secure-port=0",
		"--leader-elect=false",
		"--service-account-private-key-file="+a.saKey,
		"--root-ca-file="+a.CAFile,
		"--service-cluster-ip-range="+ServiceCIDR,
		"--allocate-node-cidrs=false",
		"--use-service-account-credentials=true",
		"--v=1")
	if err != nil {
		return nil, err
	}
	p2, err := startDaemon(l, ns, dir, bin, "kube-scheduler",
		"--kubeconfig="+sched, "--secure-port=0", "--leader-elect=false", "--v=1")
	if err != nil {
		return nil, err
	}
	return []*process{p1, p2}, nil
}

// startKubeProxy runs kube-proxy in nftables mode (its own tables, nothing in
// the host's chains), masquerading Service traffic so that a pod reaches a
// Service whose backend sits on the same bridge, leaving conntrack settings
// alone.
func startKubeProxy(l *life, ns *nodeNamespace, a *APIServer, dir, bin, nodeName string) (*process, error) {
	kc, err := a.componentKubeconfig("kube-proxy", "system:kube-proxy")
	if err != nil {
		return nil, err
	}
	healthz, err := freePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	metrics, err := freePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	cfg := map[string]any{
		"apiVersion":         "kubeproxy.config.k8s.io/v1alpha1",
		"kind":               "KubeProxyConfiguration",
		"mode":               "nftables",
		"clientConnection":   map[string]any{"kubeconfig": kc},
		"hostnameOverride":   nodeName,
		"healthzBindAddress": net.JoinHostPort("127.0.0.1", strconv.Itoa(healthz)),
		"metricsBindAddress": net.JoinHostPort("127.0.0.1", strconv.Itoa(metrics)),
		"clusterCIDR":        PodCIDR,
		"detectLocalMode":    "ClusterCIDR",
		"nftables":           map[string]any{"masqueradeAll": true},
		"conntrack": map[string]any{"maxPerCore": 0, "min": 0,
			"tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
		"oomScoreAdj": 0,
	}
	path := filepath.Join(dir, "kube-proxy.json")
	if err := writeJSON(path, cfg); err != nil {
		return nil, err
	}
	return startDaemon(l, ns, dir, bin, "kube-proxy", "--config="+path, "--v=1")
}

// writeJSON writes v as a JSON file (which YAML readers accept).
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("kube: %w", err)
	}
	return nil
}
