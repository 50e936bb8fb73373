package render

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kilnbuild/kiln/internal/testenv/kube"
	"github.com/kilnbuild/kiln/pipeline/spec"
)

func TestMain(m *testing.M) { kube.Main(m) }

// kubeFiles are the rendered files of Kubernetes objects, in the order they are applied: the
// accounts first, since a Pod is only admitted when its ServiceAccount exists.
var kubeFiles = []string{FileRBAC, FileBuildPod, FileJob, FileJenkins}

// applier sends objects to the API server with server-side apply as field manager kiln.
type applier struct {
	dyn    dynamic.Interface
	mapper meta.RESTMapper
}

func newApplier(t *testing.T, a *kube.APIServer) *applier {
	t.Helper()
	dyn, err := dynamic.NewForConfig(a.Config)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(a.Config)
	if err != nil {
		t.Fatal(err)
	}
	return &applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

// apply applies obj (server-side, strict field validation); dryRun asks the server to check it
// through admission and validation without storing it. An object with generateName only is
// created instead: apply needs a name.
func (ap *applier) apply(ctx context.Context, obj runtime.Object, dryRun bool) (*unstructured.Unstructured, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	gvk := u.GroupVersionKind()
	m, err := ap.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", gvk, err)
	}
	res := ap.dyn.Resource(m.Resource).Namespace(u.GetNamespace())
	var opts []string
	if dryRun {
		opts = []string{metav1.DryRunAll}
	}
	if u.GetName() == "" {
		return res.Create(ctx, u, metav1.CreateOptions{FieldManager: "kiln", DryRun: opts, FieldValidation: "Strict"})
	}
	return res.Patch(ctx, u.GetName(), types.ApplyPatchType, data,
		metav1.PatchOptions{FieldManager: "kiln", DryRun: opts, FieldValidation: "Strict"})
}

// TestServerDryRun sends every rendered object to a real kube-apiserver with server-side dry
// run: the API server's own validation and admission accept them all.
func TestServerDryRun(t *testing.T) {
	a := kube.Shared(t)
	ns := a.Namespace(t)
	ctx := t.Context()
	ap := newApplier(t, a)
	p := walkthrough()
	p.Namespace = ns
	vars := load(t, "vars.yaml")
	varsOpts := varsOptions()
	varsOpts.Vars["NAMESPACE"] = ns
	for _, tc := range []struct {
		p *spec.Pipeline
		o Options
	}{
		{p, Options{BuildNumber: "7"}},
		{p, Options{Targets: []string{TargetJob}}}, // a Job with generateName: created, not applied
		{vars, varsOpts},
	} {
		files, err := RenderWith(tc.p, tc.o)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range kubeFiles {
			if files[name] == nil {
				continue
			}
			for i, obj := range decodeAll(t, name, files[name]) {
				got, err := ap.apply(ctx, obj, true)
				if err != nil {
					t.Errorf("%s of %s: object %d: %v", name, tc.p.Name, i+1, err)
					continue
				}
				if got.GetNamespace() != ns {
					t.Errorf("%s: %s %s landed in namespace %q, want %q", name, got.GetKind(), got.GetName(), got.GetNamespace(), ns)
				}
				t.Logf("%s of %s: %s %s/%s accepted (dry run)", name, tc.p.Name, got.GetKind(), ns, got.GetName())
			}
			if name == FileRBAC {
				// Really create the accounts now: the Pod's admission looks its account up.
				for _, obj := range decodeAll(t, name, files[name]) {
					if _, err := ap.apply(ctx, obj, false); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
				}
			}
		}
	}
	// The server does check: a pod whose account is missing, or with an invalid field, is
	// refused even in a dry run.
	files, err := Render(p, TargetJenkins)
	if err != nil {
		t.Fatal(err)
	}
	pod := only[*corev1.Pod](t, FileBuildPod, decodeAll(t, FileBuildPod, files[FileBuildPod]))
	pod.Spec.ServiceAccountName = "nobody"
	if _, err := ap.apply(ctx, pod, true); err == nil {
		t.Error("a build pod with a missing service account passed the dry run")
	}
	pod.Spec.ServiceAccountName = ServiceAccountName(p)
	pod.Spec.Containers[0].Name = "Build_Stage"
	if _, err := ap.apply(ctx, pod, true); !apierrors.IsInvalid(err) {
		t.Errorf("a build pod with an invalid container name: %v, want invalid", err)
	}
	// Dry run stored nothing.
	if _, err := a.Client(t).CoreV1().Pods(ns).Get(ctx, "minimalapi-build", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after a dry run, the build pod: %v, want not found", err)
	}
}

// TestRBACAuthorizes asks the API server's RBAC authorizer, as each rendered account, what it
// may do: exactly what the deploy (or Jenkins' Kubernetes plugin) needs, in its namespace.
func TestRBACAuthorizes(t *testing.T) {
	a := kube.Shared(t)
	ns := a.Namespace(t)
	ctx := t.Context()
	ap := newApplier(t, a)
	p := walkthrough()
	p.Namespace = ns
	files, err := Render(p, TargetJenkins)
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range decodeAll(t, FileRBAC, files[FileRBAC]) {
		if _, err := ap.apply(ctx, obj, false); err != nil {
			t.Fatal(err)
		}
	}
	type check struct {
		verb, group, resource, sub, ns string
		allowed                        bool
	}
	other := "default"
	pipelineChecks := []check{
		{"create", "apps", "deployments", "", ns, true}, {"patch", "apps", "deployments", "", ns, true},
		{"update", "apps", "deployments", "", ns, true}, {"get", "apps", "deployments", "", ns, true},
		{"watch", "apps", "deployments", "", ns, true}, {"list", "apps", "deployments", "", ns, true},
		{"create", "", "services", "", ns, true}, {"patch", "", "services", "", ns, true},
		{"list", "", "pods", "", ns, true}, {"watch", "", "events", "", ns, true},
		{"delete", "apps", "deployments", "", ns, false}, {"delete", "", "services", "", ns, false},
		{"get", "", "secrets", "", ns, false}, {"list", "", "secrets", "", ns, false},
		{"create", "", "pods", "", ns, false}, {"create", "", "pods", "exec", ns, false},
		{"patch", "apps", "deployments", "", other, false}, {"list", "", "pods", "", other, false},
		{"list", "", "namespaces", "", "", false}, {"create", "rbac.authorization.k8s.io", "roles", "", ns, false},
	}
	jenkinsChecks := []check{
		{"create", "", "pods", "", ns, true}, {"delete", "", "pods", "", ns, true}, {"watch", "", "pods", "", ns, true},
		{"create", "", "pods", "exec", ns, true}, {"get", "", "pods", "exec", ns, true}, {"get", "", "pods", "log", ns, true},
		{"patch", "", "pods", "", ns, false}, {"get", "", "secrets", "", ns, false},
		{"create", "", "pods", "", other, false}, {"patch", "apps", "deployments", "", ns, false},
	}
	for sa, checks := range map[string][]check{"minimalapi-pipeline": pipelineChecks, "jenkins": jenkinsChecks} {
		c := saClient(t, a.ServiceAccountKubeconfig(t, ns, sa))
		for _, ck := range checks {
			review, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
				Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: ck.ns, Verb: ck.verb, Group: ck.group, Resource: ck.resource, Subresource: ck.sub,
				}},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if review.Status.Allowed != ck.allowed {
				t.Errorf("%s: %s %s/%s (%s) in %q: allowed %v, want %v", sa, ck.verb, ck.resource, ck.sub, ck.group, ck.ns,
					review.Status.Allowed, ck.allowed)
			}
		}
	}

	// And for real: the pipeline's account applies the app's Deployment and Service (dry run)
	// and is refused a delete and a Secret read.
	c := saClient(t, a.ServiceAccountKubeconfig(t, ns, "minimalapi-pipeline"))
	labels := map[string]string{"app": "minimalapi"}
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "minimalapi", Namespace: ns},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "kiln/minimalapi:7"}}},
		}},
	}
	data, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AppsV1().Deployments(ns).Patch(ctx, d.Name, types.ApplyPatchType, data,
		metav1.PatchOptions{FieldManager: "kiln", DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("the pipeline's account cannot apply a Deployment: %v", err)
	}
	if err := c.AppsV1().Deployments(ns).Delete(ctx, d.Name, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}); !apierrors.IsForbidden(err) {
		t.Errorf("the pipeline's account deleting a Deployment: %v, want forbidden", err)
	}
	if _, err := c.CoreV1().Secrets(ns).Get(ctx, "regcred", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("the pipeline's account reading a Secret: %v, want forbidden", err)
	}
}

func saClient(t *testing.T, kubeconfig string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
