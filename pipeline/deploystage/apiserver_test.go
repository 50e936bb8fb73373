package deploystage_test

// Tests against a real kube-apiserver (etcd + kube-apiserver from internal/testenv/kube). No
// controller runs there: the tests move Deployment and pod status themselves, as the
// controllers and the kubelet would.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kilnbuild/kiln/internal/testenv/kube"
	"github.com/kilnbuild/kiln/pipeline/deploystage"
	"github.com/kilnbuild/kiln/pipeline/render"
	"github.com/kilnbuild/kiln/pipeline/spec"
)

func TestMain(m *testing.M) { kube.Main(m) }

// server is the test binary's shared API server; -short skips what needs it.
func server(t *testing.T) *kube.APIServer {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no kube-apiserver")
	}
	return kube.Shared(t)
}

// log records the stage's log lines.
type log struct {
	t     *testing.T
	mu    sync.Mutex
	lines []string
}

func (l *log) Infof(f string, a ...any) { l.add("INFO " + fmt.Sprintf(f, a...)) }
func (l *log) Warnf(f string, a ...any) { l.add("WARN " + fmt.Sprintf(f, a...)) }
func (l *log) add(s string) {
	l.t.Log(s)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
}

func (l *log) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// deploy runs the stage on testdata manifests (the hello Deployment and Service by default).
type deploy struct {
	ctx                   context.Context // nil: Background
	kubeconfig, namespace string
	manifests             []string
	tag                   string
	wait                  bool
	timeout               time.Duration
}

func (d deploy) run(t *testing.T) ([]string, *log, error) {
	t.Helper()
	if d.manifests == nil {
		d.manifests = []string{"app/hello.yaml"}
	}
	l := &log{t: t}
	sd := &spec.Deploy{Manifests: d.manifests, Wait: &d.wait, Timeout: spec.Duration{Duration: d.timeout}}
	if d.tag != "" {
		sd.Replacements = map[string]string{"<TAG>": d.tag}
	}
	if d.ctx == nil {
		d.ctx = context.Background()
	}
	changes, err := deploystage.Run(d.ctx, sd, d.namespace,
		deploystage.Options{Kubeconfig: d.kubeconfig, BaseDir: "testdata", Log: l})
	var got []string
	for _, c := range changes {
		got = append(got, c.String()+" ns="+c.Namespace)
	}
	return got, l, err
}

func wantChanges(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	t.Logf("error (as wanted):\n%v", err)
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error does not contain %q", p)
		}
	}
}

func image(t *testing.T, c kubernetes.Interface, ns string) *appsv1.Deployment {
	t.Helper()
	d, err := c.AppsV1().Deployments(ns).Get(context.Background(), "hello", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestApplyBuildsReportsChanges(t *testing.T) {
	a := server(t)
	ns := a.Namespace(t)
	c := a.Client(t)
	d := deploy{kubeconfig: a.AdminKubeconfig, namespace: ns, tag: "1"}

	got, _, err := d.run(t)
	if err != nil {
		t.Fatal(err)
	}
	wantChanges(t, got, "deployment.apps/hello created ns="+ns, "service/hello created ns="+ns)
	dep := image(t, c, ns)
	ctr := dep.Spec.Template.Spec.Containers[0]
	if ctr.Image != "localhost:5000/hello:1" || dep.Labels["version"] != "1" {
		t.Errorf("build 1: image %s, label %s", ctr.Image, dep.Labels["version"])
	}
	if ctr.Ports[0].ContainerPort != 8080 || ctr.ReadinessProbe.HTTPGet.Port.IntValue() != 8080 || ctr.LivenessProbe.HTTPGet.Path != "/" {
		t.Errorf("container ports and probes: %+v %+v", ctr.Ports, ctr.ReadinessProbe)
	}
	svc, err := c.CoreV1().Services(ns).Get(context.Background(), "hello", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p := svc.Spec.Ports[0]; svc.Spec.Type != corev1.ServiceTypeLoadBalancer || p.Port != 8082 || p.TargetPort.IntValue() != 8080 {
		t.Errorf("service: %s %+v", svc.Spec.Type, svc.Spec.Ports)
	}
	if m := dep.ManagedFields; len(m) != 1 || m[0].Manager != deploystage.FieldManager || m[0].Operation != metav1.ManagedFieldsOperationApply {
		t.Errorf("managed fields: %+v", m)
	}

	got, _, err = d.run(t)
	if err != nil {
		t.Fatal(err)
	}
	wantChanges(t, got, "deployment.apps/hello unchanged ns="+ns, "service/hello unchanged ns="+ns)

	d.tag = "2"
	got, _, err = d.run(t)
	if err != nil {
		t.Fatal(err)
	}
	wantChanges(t, got, "deployment.apps/hello configured ns="+ns, "service/hello unchanged ns="+ns)
	if img := image(t, c, ns).Spec.Template.Spec.Containers[0].Image; img != "localhost:5000/hello:2" {
		t.Errorf("build 2: image %s", img)
	}

	// Someone edits the image by hand: the next deploy takes the field back, and says so.
	dep = image(t, c, ns)
	dep.Spec.Template.Spec.Containers[0].Image = "localhost:5000/hello:hotfix"
	if _, err := c.AppsV1().Deployments(ns).Update(context.Background(), dep, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	got, l, err := d.run(t)
	if err != nil {
		t.Fatal(err)
	}
	wantChanges(t, got, "deployment.apps/hello configured ns="+ns, "service/hello unchanged ns="+ns)
	if !l.has(`WARN deployment.apps/hello in namespace ` + ns + `: taking over fields another manager set: Apply failed with 1 conflict: conflict with "kubectl-edit"`) {
		t.Error("the takeover was not logged")
	}
	if img := image(t, c, ns).Spec.Template.Spec.Containers[0].Image; img != "localhost:5000/hello:2" {
		t.Errorf("after the takeover: image %s", img)
	}
}

func TestServiceAccountCanDeployAndNoMore(t *testing.T) {
	a := server(t)
	ns := a.Namespace(t)
	admin := a.Client(t)
	sa, role, binding := render.PipelineRBAC(&spec.Pipeline{Name: "hello", Namespace: ns})
	ctx := context.Background()
	if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kc := a.ServiceAccountKubeconfig(t, ns, sa.Name)
	user := "system:serviceaccount:" + ns + ":" + sa.Name

	// The pipeline's own namespace comes from the kubeconfig's context here.
	got, l, err := deploy{kubeconfig: kc, tag: "1"}.run(t)
	if err != nil {
		t.Fatal(err)
	}
	wantChanges(t, got, "deployment.apps/hello created ns="+ns, "service/hello created ns="+ns)
	if !l.has(", as " + user) {
		t.Error("the log does not say who deployed")
	}
	got, _, err = deploy{kubeconfig: kc, namespace: ns, tag: "2"}.run(t)
	if err != nil {
		t.Fatal(err)
	}
	wantChanges(t, got, "deployment.apps/hello configured ns="+ns, "service/hello unchanged ns="+ns)

	// What the Role does not grant: deleting, reading secrets, other kinds, other namespaces.
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	c := kubernetes.NewForConfigOrDie(cfg)
	err = c.AppsV1().Deployments(ns).Delete(ctx, "hello", metav1.DeleteOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("delete deployment: %v, want forbidden", err)
	}
	if _, err := admin.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "regcred"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().Secrets(ns).Get(ctx, "regcred", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("get secret: %v, want forbidden", err)
	}
	if _, err := c.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list secrets: %v, want forbidden", err)
	}
	_, _, err = deploy{kubeconfig: kc, namespace: ns, manifests: []string{"cluster/configmap.yaml"}}.run(t)
	wantErr(t, err, "configmap/hello-settings in namespace "+ns+", cluster/configmap.yaml:1 (document 1): read: ",
		`configmaps "hello-settings" is forbidden: User "`+user+`" cannot get resource "configmaps" in API group "" in the namespace "`+ns+`"`,
		"(server-side apply needs get, create and patch on configmaps)")
	_, _, err = deploy{kubeconfig: kc, namespace: "default", tag: "1"}.run(t)
	wantErr(t, err, "deployment.apps/hello in namespace default, app/hello.yaml:3 (document 1): read: ",
		`cannot get resource "deployments" in API group "apps" in the namespace "default"`)
}

func TestServerRejectsManifest(t *testing.T) {
	a := server(t)
	ns := a.Namespace(t)
	_, _, err := deploy{kubeconfig: a.AdminKubeconfig, namespace: ns, manifests: []string{"rejected/port.yaml"}}.run(t)
	wantErr(t, err, "deployment.apps/bad-port in namespace "+ns+", rejected/port.yaml:1 (document 1): apply: ",
		`Deployment.apps "bad-port" is invalid: spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 80800: must be between 1 and 65535, inclusive`)

	_, _, err = deploy{kubeconfig: a.AdminKubeconfig, namespace: ns, manifests: []string{"rejected/field.yaml"}}.run(t)
	wantErr(t, err, "service/hello in namespace "+ns+", rejected/field.yaml:11 (document 2): apply: ",
		`.spec.ports[port=8082,protocol="TCP"].targetPorts: field not declared in schema`)

	_, _, err = deploy{kubeconfig: a.AdminKubeconfig, namespace: ns, manifests: []string{"rejected/kind.yaml"}}.run(t)
	wantErr(t, err, "rejected/kind.yaml:1 (document 1): the API server serves no kind Widget in example.com/v1")
}

func TestBadCredentials(t *testing.T) {
	a := server(t)
	path := filepath.Join(t.TempDir(), "kubeconfig")
	ca, err := os.ReadFile(a.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: a.URL, CertificateAuthorityData: ca}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "not-a-valid-token"}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "c"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	_, _, err = deploy{kubeconfig: path, tag: "1"}.run(t)
	wantErr(t, err, fmt.Sprintf("the API server %s refused the credentials of kubeconfig %s, context \"c\" (401 Unauthorized: a wrong or expired token or client certificate)", a.URL, path))

	cfg.Clusters["c"].CertificateAuthorityData = nil // the system's CAs do not know the test CA
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	_, _, err = deploy{kubeconfig: path, tag: "1"}.run(t)
	wantErr(t, err, fmt.Sprintf("cannot reach the Kubernetes API server %s (from kubeconfig %s, context \"c\")", a.URL, path),
		"certificate signed by unknown authority")
}

func TestCustomResourceWithItsDefinition(t *testing.T) {
	a := server(t)
	ns := a.Namespace(t)
	dir := t.TempDir()
	group := ns + ".example.com" // CRDs are cluster-wide: one group per test namespace
	manifest := `apiVersion: example.com/v1
kind: Widget
metadata: {name: w1}
spec: {size: 3}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
`
	manifest = strings.ReplaceAll(manifest, "example.com", group)
	if err := os.WriteFile(filepath.Join(dir, "widget.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	l := &log{t: t}
	run := func() []string {
		changes, err := deploystage.Run(context.Background(), &spec.Deploy{Manifests: []string{"widget.yaml"}}, ns,
			deploystage.Options{Kubeconfig: a.AdminKubeconfig, BaseDir: dir, Log: l})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range changes {
			got = append(got, c.String())
		}
		return got
	}
	wantChanges(t, run(), "customresourcedefinition.apiextensions.k8s.io/widgets."+group+" created", "widget."+group+"/w1 created")
	wantChanges(t, run(), "customresourcedefinition.apiextensions.k8s.io/widgets."+group+" unchanged", "widget."+group+"/w1 unchanged")
}

// setStatus moves the Deployment's status as the Deployment controller would.
func setStatus(t *testing.T, c kubernetes.Interface, ns string, st appsv1.DeploymentStatus) {
	t.Helper()
	ctx := context.Background()
	d, err := c.AppsV1().Deployments(ns).Get(ctx, "hello", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st.ObservedGeneration = d.Generation
	d.Status = st
	if _, err := c.AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestWaitForRollout(t *testing.T) {
	a := server(t)
	ns := a.Namespace(t)
	c := a.Client(t)
	if _, _, err := (deploy{kubeconfig: a.AdminKubeconfig, namespace: ns, tag: "1"}).run(t); err != nil {
		t.Fatal(err)
	}
	setStatus(t, c, ns, appsv1.DeploymentStatus{Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1, ReadyReplicas: 1})

	// Build 2 changes the template: the controller has not seen it until the test says so.
	type result struct {
		changes []string
		log     *log
		err     error
	}
	done := make(chan result, 1)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() }) // a failing test stops the deploy it started
	wg.Go(func() {
		got, l, err := deploy{ctx: ctx, kubeconfig: a.AdminKubeconfig, namespace: ns, tag: "2", wait: true, timeout: 5 * time.Minute}.run(t)
		done <- result{got, l, err}
	})
	for {
		d, err := c.AppsV1().Deployments(ns).Get(ctx, "hello", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Generation == 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	setStatus(t, c, ns, appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1, UnavailableReplicas: 1})
	setStatus(t, c, ns, appsv1.DeploymentStatus{Replicas: 1, UpdatedReplicas: 1, UnavailableReplicas: 1})
	setStatus(t, c, ns, appsv1.DeploymentStatus{Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1, ReadyReplicas: 1})
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	wantChanges(t, r.changes, "deployment.apps/hello configured ns="+ns, "service/hello unchanged ns="+ns)
	if !r.log.has("deployment.apps/hello in namespace " + ns + " successfully rolled out in") {
		t.Error("the rollout's end was not logged")
	}
}

// leastPrivilege is all the deploy stage needs to apply the hello Deployment and Service and
// follow the rollout, found by taking verbs away: apply reads (get), then patches, which
// creates when the object is new (create); waiting lists and watches Deployments; a failed
// rollout lists the pods and their events.
var leastPrivilege = []rbacv1.PolicyRule{
	{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "create", "patch", "list", "watch"}},
	{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"get", "create", "patch"}},
	{APIGroups: []string{""}, Resources: []string{"pods", "events"}, Verbs: []string{"list"}},
}

// TestRolloutTimeoutNamesPodReasons runs as a service account with leastPrivilege only.
func TestRolloutTimeoutNamesPodReasons(t *testing.T) {
	a := server(t)
	ns := a.Namespace(t)
	admin := a.Client(t)
	ctx := context.Background()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "deployer"}, Rules: leastPrivilege}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "deployer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "deployer"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "deployer", Namespace: ns}},
	}
	for _, create := range []func() error{
		func() error { _, err := admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); return err },
		func() error {
			_, err := admin.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{})
			return err
		},
		func() error { // pods need their service account (no controller makes "default" here)
			_, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
			return err
		},
	} {
		if err := create(); err != nil {
			t.Fatal(err)
		}
	}
	kc := a.ServiceAccountKubeconfig(t, ns, "deployer")
	if _, _, err := (deploy{kubeconfig: kc, namespace: ns, tag: "1"}).run(t); err != nil {
		t.Fatal(err)
	}
	got, _, err := deploy{kubeconfig: kc, namespace: ns, tag: "2"}.run(t)
	if err != nil {
		t.Fatal(err)
	}
	wantChanges(t, got, "deployment.apps/hello configured ns="+ns, "service/hello unchanged ns="+ns)
	setStatus(t, admin, ns, appsv1.DeploymentStatus{Replicas: 1, UpdatedReplicas: 1, UnavailableReplicas: 1})

	// The pod the ReplicaSet would have made; the kubelet cannot pull its image.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "hello-7d4b9c-x2x4z", Labels: map[string]string{"app": "hello"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "hello", Image: "localhost:5000/hello:2"}}},
	}
	pod, err = admin.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status = corev1.PodStatus{
		Phase:      corev1.PodPending,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady"}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "hello", Image: "localhost:5000/hello:2", State: corev1.ContainerState{
			Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: `Back-off pulling image "localhost:5000/hello:2"`}}}},
	}
	if _, err := admin.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: pod.Name + ".unhealthy"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: pod.Name, UID: pod.UID, APIVersion: "v1"},
		Type:           corev1.EventTypeWarning, Reason: "Unhealthy", Count: 3,
		Message:        "Readiness probe failed: HTTP probe failed with statuscode: 500",
		Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
		FirstTimestamp: now, LastTimestamp: now,
	}
	if _, err := admin.CoreV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	got, _, err = deploy{kubeconfig: kc, namespace: ns, tag: "2", wait: true, timeout: 2 * time.Second}.run(t)
	wantChanges(t, got, "deployment.apps/hello unchanged ns="+ns, "service/hello unchanged ns="+ns)
	var re *deploystage.RolloutError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not a RolloutError", err)
	}
	wantErr(t, err,
		"deployment.apps/hello in namespace "+ns+", app/hello.yaml:3 (document 1): rollout not complete after 2s: 0 of 1 updated replicas are available",
		"\n  pod hello-7d4b9c-x2x4z: container hello: ImagePullBackOff (image localhost:5000/hello:2): Back-off pulling image \"localhost:5000/hello:2\"",
		"\n  pod hello-7d4b9c-x2x4z: Unhealthy: Readiness probe failed: HTTP probe failed with statuscode: 500 (3 times)")
}
