package kube

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Cluster-wide settings shared by the API server and the node.
const (
	// ServiceCIDR is the range of ClusterIPs; the first is the kubernetes Service.
	ServiceCIDR = "10.97.0.0/24"
	// serviceIP is the ClusterIP of the kubernetes Service.
	serviceIP = "10.97.0.1"
	// serviceAccountIssuer is the iss claim of service-account tokens.
	serviceAccountIssuer = "https://kubernetes.default.svc.cluster.local"
	// readyTimeout bounds the wait for a daemon to become ready (two busy cores).
	readyTimeout = 3 * time.Minute
)

// APIServer is a running kube-apiserver backed by its own etcd.
type APIServer struct {
	// URL is https://127.0.0.1:PORT.
	URL string
	// AdminKubeconfig is a kubeconfig file (certificates embedded) for a
	// client certificate in group system:masters.
	AdminKubeconfig string
	// Config is the admin's client configuration.
	Config *rest.Config
	// CAFile is the PEM file of the CA that signed the serving certificate
	// and every client certificate the server trusts.
	CAFile string
	// LogFile is kube-apiserver's output (etcd.log is next to it).
	LogFile string

	ca        *authority
	pki       string // directory of certificates and keys
	saKey     string // service-account signing key (private PEM)
	hostIP    net.IP // the node address in the serving certificate, if any
	adminPair keyPair
}

// apiOptions are the differences between a bare API server and a cluster's.
type apiOptions struct {
	bindIP string // address kube-apiserver listens on, and the host of its URL
	hostIP net.IP // advertised address, reachable from pods; nil = unknown
}

// StartAPIServer runs etcd and kube-apiserver on free ports of 127.0.0.1 with
// their state in t.TempDir(), waits until the server is ready (RBAC bootstrap
// roles and the default namespace exist) and stops both at the test's
// cleanup. No controllers run: see the package documentation.
func StartAPIServer(t testing.TB) *APIServer {
	t.Helper()
	l := testLife(t)
	hostIP, _ := HostIP() // only advertised; a machine without one still works
	a, err := startAPIServer(l, apiOptions{bindIP: "127.0.0.1", hostIP: hostIP})
	if err != nil {
		fatalOrSkip(t, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kube: end of %s:\n%s", a.LogFile, logTail(a.LogFile))
		}
	})
	return a
}

// startAPIServer starts etcd and kube-apiserver within l.
func startAPIServer(l *life, o apiOptions) (*APIServer, error) {
	start := time.Now()
	bin, err := binDir(l.logf, "kube-apiserver")
	if err != nil {
		return nil, err
	}
	etcdURL, err := startEtcd(l)
	if err != nil {
		return nil, err
	}
	a := &APIServer{pki: filepath.Join(l.dir, "pki"), hostIP: o.hostIP, LogFile: filepath.Join(l.dir, "kube-apiserver.log")}
	if err := a.makePKI(); err != nil {
		return nil, err
	}
	if err := a.run(l, o, filepath.Join(bin, "kube-apiserver"), etcdURL); err != nil {
		return nil, err
	}
	if err := a.waitBootstrap(); err != nil {
		return nil, err
	}
	l.logf("kube: API server %s ready in %s (state in %s)", a.URL, time.Since(start).Round(time.Millisecond), l.dir)
	return a, nil
}

// makePKI writes the CA, the serving certificate, the admin and kubelet
// client certificates and the service-account signing key.
func (a *APIServer) makePKI() error {
	if err := os.MkdirAll(a.pki, 0o700); err != nil {
		return err
	}
	ca, err := newAuthority("kiln-test-ca")
	if err != nil {
		return err
	}
	a.ca, a.CAFile = ca, filepath.Join(a.pki, "ca.crt")
	if err := os.WriteFile(a.CAFile, ca.certPEM, 0o644); err != nil {
		return err
	}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(serviceIP)}
	if a.hostIP != nil {
		ips = append(ips, a.hostIP)
	}
	pairs := map[string]certSpec{
		"apiserver": {commonName: "kube-apiserver", server: true, ips: ips,
			dnsNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}},
		"admin":                    {commonName: "kiln-admin", orgs: []string{"system:masters"}, client: true},
		"apiserver-kubelet-client": {commonName: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}, client: true},
	}
	for name, spec := range pairs {
		kp, err := ca.issue(spec)
		if err != nil {
			return err
		}
		if _, _, err := kp.write(a.pki, name); err != nil {
			return err
		}
		if name == "admin" {
			a.adminPair = kp
		}
	}
	a.saKey, _, err = newSigningKey(a.pki)
	return err
}

// apiserverArgs is the command line of kube-apiserver on port.
func (a *APIServer) apiserverArgs(o apiOptions, etcdURL string, port int) []string {
	pki := func(name string) string { return filepath.Join(a.pki, name) }
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=" + o.bindIP,
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + pki("apiserver.crt"),
		"--tls-private-key-file=" + pki("apiserver.key"),
		"--client-ca-file=" + a.CAFile,
		"--kubelet-client-certificate=" + pki("apiserver-kubelet-client.crt"),
		"--kubelet-client-key=" + pki("apiserver-kubelet-client.key"),
		"--kubelet-preferred-address-types=InternalIP,Hostname",
		"--service-account-issuer=" + serviceAccountIssuer,
		"--service-account-key-file=" + pki("sa.pub"),
		"--service-account-signing-key-file=" + a.saKey,
		"--authorization-mode=Node,RBAC",
		"--service-cluster-ip-range=" + ServiceCIDR,
		"--allow-privileged=true",
		// Flow control only costs CPU here: no test loads the server.
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--v=1",
	}
	if a.hostIP != nil {
		args = append(args, "--advertise-address="+a.hostIP.String())
	}
	return args
}

// run starts kube-apiserver on a free port (retrying when another process
// takes it first) and waits for /readyz.
func (a *APIServer) run(l *life, o apiOptions, binary, etcdURL string) error {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort(o.bindIP)
		if err != nil {
			return fmt.Errorf("kube: free port on %s: %w", o.bindIP, err)
		}
		a.URL = "https://" + net.JoinHostPort(o.bindIP, strconv.Itoa(port))
		p, err := l.start("kube-apiserver", a.LogFile, append([]string{binary}, a.apiserverArgs(o, etcdURL, port)...)...)
		if err != nil {
			return err
		}
		if err := a.setConfig(); err != nil {
			p.stop(10 * time.Second)
			return err
		}
		lastErr = a.waitReady(p)
		if lastErr == nil {
			l.onStop(func() { p.stop(15 * time.Second) })
			return nil
		}
		p.stop(10 * time.Second)
		if !strings.Contains(logTail(a.LogFile), "address already in use") {
			break
		}
	}
	return lastErr
}

// setConfig makes the admin client configuration and kubeconfig for a.URL.
func (a *APIServer) setConfig() error {
	a.Config = &rest.Config{
		Host: a.URL,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   a.ca.certPEM,
			CertData: a.adminPair.certPEM,
			KeyData:  a.adminPair.keyPEM,
		},
		QPS:   50,
		Burst: 100,
	}
	a.AdminKubeconfig = filepath.Join(a.pki, "admin.kubeconfig")
	return writeKubeconfig(a.AdminKubeconfig, kubeconfig{
		server: a.URL, caPEM: a.ca.certPEM, user: "kiln-admin",
		certPEM: a.adminPair.certPEM, keyPEM: a.adminPair.keyPEM, namespace: "default",
	})
}

// waitReady polls /readyz until it answers 200 or p exits.
func (a *APIServer) waitReady(p *process) error {
	rt, err := rest.TransportFor(a.Config)
	if err != nil {
		return err
	}
	hc := &http.Client{Transport: rt, Timeout: 5 * time.Second}
	last := "no answer"
	for deadline := time.Now().Add(readyTimeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if p.exited() {
			return p.exitError()
		}
		resp, err := hc.Get(a.URL + "/readyz")
		if err != nil {
			last = err.Error()
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		last = resp.Status
	}
	return fmt.Errorf("kube: kube-apiserver %s/readyz not ready within %s (last: %s); log %s:\n%s",
		a.URL, readyTimeout, last, a.LogFile, logTail(a.LogFile))
}

// waitBootstrap waits for what the server creates after /readyz: the default
// namespace and the bootstrap cluster roles.
func (a *APIServer) waitBootstrap() error {
	c, err := kubernetes.NewForConfig(a.Config)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	for {
		_, errNS := c.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
		_, errRole := c.RbacV1().ClusterRoles().Get(ctx, "admin", metav1.GetOptions{})
		if errNS == nil && errRole == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube: %s: default namespace (%v) or cluster role admin (%v) missing after %s", a.URL, errNS, errRole, readyTimeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Client returns an admin clientset (group system:masters).
func (a *APIServer) Client(t testing.TB) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(rest.CopyConfig(a.Config))
	if err != nil {
		t.Fatalf("kube: client for %s: %v", a.URL, err)
	}
	return c
}

// ensureNamespace creates namespace ns unless it exists.
func ensureNamespace(ctx context.Context, c kubernetes.Interface, ns string) error {
	_, err := c.CoreV1().Namespaces().Create(ctx, namespaceObject(ns), metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("kube: create namespace %s: %w", ns, err)
	}
	return nil
}
