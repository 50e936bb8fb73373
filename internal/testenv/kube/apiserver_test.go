package kube

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func TestMain(m *testing.M) { Main(m) }

// kubeconfigClient loads a kubeconfig file the way users' tools do.
func kubeconfigClient(t *testing.T, path string) (kubernetes.Interface, string) {
	t.Helper()
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: path}, &clientcmd.ConfigOverrides{})
	cfg, err := loader.ClientConfig()
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	ns, _, err := loader.Namespace()
	if err != nil {
		t.Fatalf("namespace of %s: %v", path, err)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, ns
}

// whoAmI asks the server who the client is.
func whoAmI(t *testing.T, c kubernetes.Interface) authenticationv1.UserInfo {
	t.Helper()
	r, err := c.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SelfSubjectReview: %v", err)
	}
	return r.Status.UserInfo
}

func TestAPIServerServiceAccountKubeconfig(t *testing.T) {
	a := StartAPIServer(t)
	ctx := context.Background()

	admin, ns := kubeconfigClient(t, a.AdminKubeconfig)
	if u := whoAmI(t, admin); !slices.Contains(u.Groups, "system:masters") || ns != "default" {
		t.Fatalf("admin kubeconfig: user %+v, namespace %q; want group system:masters, namespace default", u, ns)
	}
	if _, err := a.Client(t).CoreV1().Namespaces().Create(ctx, namespaceObject("team-a"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	path := a.ServiceAccountKubeconfig(t, "team-a", "deployer")
	sa, ns := kubeconfigClient(t, path)
	if ns != "team-a" {
		t.Errorf("kubeconfig %s: context namespace %q, want team-a", path, ns)
	}
	if u := whoAmI(t, sa); u.Username != "system:serviceaccount:team-a:deployer" || !slices.Contains(u.Groups, "system:serviceaccounts:team-a") {
		t.Fatalf("service-account kubeconfig authenticates as %+v", u)
	}
	_, err := sa.CoreV1().Secrets("team-a").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("listing secrets without RBAC: got %v, want Forbidden", err)
	}

	// A Role bound to the account lets it in: the error above was RBAC's.
	grantSecretsList(t, a.Client(t), "team-a", "deployer")
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err = sa.CoreV1().Secrets("team-a").List(ctx, metav1.ListOptions{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("listing secrets after the RoleBinding: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A second kubeconfig for a new namespace creates both.
	other := a.ServiceAccountKubeconfig(t, "team-b", "ci")
	c, _ := kubeconfigClient(t, other)
	if u := whoAmI(t, c); u.Username != "system:serviceaccount:team-b:ci" {
		t.Fatalf("second kubeconfig authenticates as %+v", u)
	}
}

// grantSecretsList binds a Role allowing list on secrets to a service account.
func grantSecretsList(t *testing.T, c kubernetes.Interface, ns, sa string) {
	t.Helper()
	ctx := context.Background()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "read-secrets", Namespace: ns},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list"}}},
	}
	if _, err := c.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "read-secrets", Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "read-secrets"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}},
	}
	if _, err := c.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestAPIServerStopsWhatItStarted checks the stop: every process gone, the
// ports closed.
func TestAPIServerStopsWhatItStarted(t *testing.T) {
	l := &life{dir: t.TempDir(), logf: t.Logf}
	a, err := startAPIServer(l, apiOptions{bindIP: "127.0.0.1"})
	if err != nil {
		l.stop()
		fatalOrSkip(t, err)
	}
	if len(l.procs) != 2 {
		t.Fatalf("started %d processes, want etcd and kube-apiserver", len(l.procs))
	}
	l.stop()
	for _, p := range l.procs {
		if !p.exited() {
			t.Errorf("%s (pid %d) still running after stop", p.name, p.cmd.Process.Pid)
		}
		if err := syscall.Kill(-p.cmd.Process.Pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process group of %s (pid %d) still has members: %v", p.name, p.cmd.Process.Pid, err)
		}
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	if _, err := hc.Get(a.URL + "/readyz"); err == nil {
		t.Errorf("%s still answers after stop", a.URL)
	}
}

func TestSharedNamespaces(t *testing.T) {
	var urls, names []string
	for _, name := range []string{"one", "two"} {
		t.Run(name, func(t *testing.T) {
			a := Shared(t)
			ns := a.Namespace(t)
			if _, err := a.Client(t).CoreV1().ConfigMaps(ns).List(context.Background(), metav1.ListOptions{}); err != nil {
				t.Fatal(err)
			}
			urls, names = append(urls, a.URL), append(names, ns)
		})
	}
	if len(urls) != 2 || urls[0] != urls[1] || names[0] == names[1] {
		t.Fatalf("Shared servers %v, namespaces %v: want one server, two namespaces", urls, names)
	}
}
