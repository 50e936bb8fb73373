package kube

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// etcdPackage is the Debian package of the etcd binary.
const etcdPackage = "etcd-server"

// startEtcd runs Debian's etcd on two free ports of 127.0.0.1 with its data in
// l.dir/etcd and returns its client URL once /health answers.
func startEtcd(l *life) (string, error) {
	etcd, err := exec.LookPath("etcd")
	if err != nil {
		return "", skipf("kube: etcd is not installed (apt-get install %s): %v", etcdPackage, err)
	}
	logFile := filepath.Join(l.dir, "etcd.log")
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		url, p, err := tryEtcd(l, etcd, logFile)
		if err == nil {
			l.onStop(func() { p.stop(10 * time.Second) })
			return url, nil
		}
		lastErr = err
		if p == nil || !strings.Contains(logTail(logFile), "address already in use") {
			break
		}
	}
	return "", lastErr
}

// tryEtcd starts etcd once; on failure the process (if any) has ended.
func tryEtcd(l *life, etcd, logFile string) (string, *process, error) {
	clientPort, err := freePort("127.0.0.1")
	if err != nil {
		return "", nil, err
	}
	peerPort, err := freePort("127.0.0.1")
	if err != nil {
		return "", nil, err
	}
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", clientPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	dataDir := filepath.Join(l.dir, "etcd")
	if err := os.RemoveAll(dataDir); err != nil { // a failed attempt's data
		return "", nil, err
	}
	p, err := l.start("etcd", logFile, etcd,
		"--name=kiln",
		"--data-dir="+dataDir,
		"--listen-client-urls="+clientURL,
		"--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kiln="+peerURL,
		"--logger=zap",
		"--log-level=warn",
	)
	if err != nil {
		return "", nil, err
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if p.exited() {
			return "", p, p.exitError()
		}
		resp, err := hc.Get(clientURL + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return clientURL, p, nil
			}
		}
	}
	p.stop(5 * time.Second)
	return "", p, fmt.Errorf("kube: etcd on %s not healthy within 60s; log %s:\n%s", clientURL, logFile, logTail(logFile))
}
