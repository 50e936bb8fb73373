package kube

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// tokenLifetime is how long ServiceAccountKubeconfig's token is valid.
const tokenLifetime = 24 * time.Hour

// kubeconfig is one cluster, one user and the context joining them.
type kubeconfig struct {
	server, user, namespace string
	caPEM                   []byte
	certPEM, keyPEM         []byte // client certificate, or
	token                   string // bearer token
}

// writeKubeconfig writes k as a self-contained kubeconfig file (credentials
// embedded, so the file can be copied anywhere).
func writeKubeconfig(path string, k kubeconfig) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kiln"] = &clientcmdapi.Cluster{Server: k.server, CertificateAuthorityData: k.caPEM}
	cfg.AuthInfos[k.user] = &clientcmdapi.AuthInfo{
		ClientCertificateData: k.certPEM, ClientKeyData: k.keyPEM, Token: k.token,
	}
	cfg.Contexts["kiln"] = &clientcmdapi.Context{Cluster: "kiln", AuthInfo: k.user, Namespace: k.namespace}
	cfg.CurrentContext = "kiln"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("kube: write kubeconfig %s: %w", path, err)
	}
	return nil
}

// ServiceAccountKubeconfig creates namespace and the service account name in
// it when missing, asks the TokenRequest API for a token of that account
// (valid 24h) and writes a kubeconfig file that authenticates with it, its
// context's namespace set to namespace. The account has only the rights
// RBAC grants it: bind roles to system:serviceaccount:NAMESPACE:NAME.
func (a *APIServer) ServiceAccountKubeconfig(t testing.TB, namespace, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := a.Client(t)
	if err := ensureNamespace(ctx, c, namespace); err != nil {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	if _, err := c.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("kube: create service account %s/%s: %v", namespace, name, err)
	}
	seconds := int64(tokenLifetime / time.Second)
	tr, err := c.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("kube: token for service account %s/%s: %v", namespace, name, err)
	}
	path := filepath.Join(t.TempDir(), fileName(namespace+"-"+name)+".kubeconfig")
	err = writeKubeconfig(path, kubeconfig{
		server: a.URL, caPEM: a.ca.certPEM, user: "system:serviceaccount:" + namespace + ":" + name,
		token: tr.Status.Token, namespace: namespace,
	})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// Namespace creates a namespace named after the test (plus a random suffix,
// so tests sharing a server never meet) and deletes it at cleanup.
func (a *APIServer) Namespace(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := a.Client(t)
	base := strings.Trim(fileName(strings.ToLower(t.Name())), "-")
	if len(base) > 40 {
		base = strings.Trim(base[:40], "-")
	}
	obj := namespaceObject("")
	obj.GenerateName = "t-" + base + "-"
	ns, err := c.CoreV1().Namespaces().Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("kube: create namespace for %s: %v", t.Name(), err)
	}
	t.Cleanup(func() {
		// Without a namespace controller (bare API server) it stays
		// Terminating; its name is never reused either way.
		err := c.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("kube: delete namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}

// namespaceObject is a Namespace named ns.
func namespaceObject(ns string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
}

var unsafeName = regexp.MustCompile(`[^a-z0-9-]+`)

// fileName turns s into a name safe as a file name and a DNS label.
func fileName(s string) string {
	return unsafeName.ReplaceAllString(strings.ToLower(s), "-")
}
