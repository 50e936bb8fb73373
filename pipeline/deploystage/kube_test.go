package deploystage

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kilnbuild/kiln/pipeline/spec"
)

// writeKubeconfig writes a token kubeconfig for server with one context, "test".
func writeKubeconfig(t *testing.T, server string) string {
	t.Helper()
	c := clientcmdapi.NewConfig()
	c.Clusters["test"] = &clientcmdapi.Cluster{Server: server, InsecureSkipTLSVerify: true}
	c.AuthInfos["test"] = &clientcmdapi.AuthInfo{Token: "not-a-token"}
	c.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "test", Namespace: "ctx-ns"}
	c.CurrentContext = "test"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*c, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadKubeconfig(t *testing.T) {
	path := writeKubeconfig(t, "https://127.0.0.1:6443")
	kc, err := loadKubeconfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if kc.namespace != "ctx-ns" || kc.config.Host != "https://127.0.0.1:6443" || kc.from != fmt.Sprintf("kubeconfig %s, context \"test\"", path) {
		t.Errorf("loaded %+v from %s", kc, kc.from)
	}
}

func TestLoadKubeconfigErrors(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "") // never in-cluster here
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	missing := filepath.Join(dir, "missing")
	_, err := loadKubeconfig(missing)
	wantErr(t, err, "kubeconfig "+missing+": stat "+missing+": no such file or directory")

	bad := write("bad", "apiVersion: v1\nkind: Config\nclusters: [unclosed\n")
	_, err = loadKubeconfig(bad)
	wantErr(t, err, "kubeconfig "+bad+": error loading config file \""+bad+"\"")

	empty := write("empty", "apiVersion: v1\nkind: Config\n")
	_, err = loadKubeconfig(empty)
	wantErr(t, err, "kubeconfig "+empty+": no current-context, or it names no cluster")

	nocluster := write("nocluster", "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {cluster: gone, user: u}\nusers:\n- name: u\n  user: {token: x}\n")
	_, err = loadKubeconfig(nocluster)
	wantErr(t, err, "kubeconfig "+nocluster+":")

	t.Setenv("KUBECONFIG", missing)
	_, err = loadKubeconfig("")
	wantErr(t, err, "no Kubernetes configuration: $KUBECONFIG="+missing+" has none, and this is not a pod (KUBERNETES_SERVICE_HOST or KUBERNETES_SERVICE_PORT is unset)")

	// In a pod (as the environment says) whose service account token is not mounted.
	if _, err := os.Stat(serviceAccountToken); err == nil {
		t.Skip("this machine has a service account token mounted at " + serviceAccountToken)
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
	t.Setenv("KUBERNETES_SERVICE_PORT", "443")
	_, err = loadKubeconfig("")
	wantErr(t, err, "no Kubernetes configuration: $KUBECONFIG="+missing+" has none, and the pod has no service account token mounted at "+serviceAccountToken)
}

func TestRunUnreachableServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	path := writeKubeconfig(t, "https://"+addr)
	_, err = Run(context.Background(), &spec.Deploy{Manifests: []string{"app/hello.yaml"}, Replacements: map[string]string{"<TAG>": "1"}},
		"demo", Options{BaseDir: "testdata", Kubeconfig: path, Log: &testLog{t: t}})
	wantErr(t, err, fmt.Sprintf("cannot reach the Kubernetes API server https://%s (from kubeconfig %s, context \"test\"): ", addr, path))
	wantErr(t, err, "connection refused")
}
