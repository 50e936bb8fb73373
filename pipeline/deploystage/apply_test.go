package deploystage

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kilnbuild/kiln/pipeline/spec"
)

// testLog records what the stage logs, and shows it in the test's log.
type testLog struct {
	t     testing.TB
	mu    sync.Mutex
	lines []string
}

func (l *testLog) Infof(f string, a ...any) { l.add("INFO " + fmt.Sprintf(f, a...)) }
func (l *testLog) Warnf(f string, a ...any) { l.add("WARN " + fmt.Sprintf(f, a...)) }

func (l *testLog) add(s string) {
	l.t.Log(s)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
}

// has tells whether a line containing s was logged.
func (l *testLog) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// staticMapper is a RESTMapper of a few built-in kinds, as discovery would build it.
type staticMapper struct{ *meta.DefaultRESTMapper }

func (staticMapper) Reset() {}

func newStaticMapper() staticMapper {
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Service"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, meta.RESTScopeRoot)
	m.Add(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}, meta.RESTScopeRoot)
	return staticMapper{m}
}

func obj(t *testing.T, yaml string) Object {
	t.Helper()
	objs, err := decodeFile("test.yaml", yaml)
	if err != nil || len(objs) != 1 {
		t.Fatalf("decode: %v %v", objs, err)
	}
	return objs[0]
}

func TestTargetNamespacePrecedence(t *testing.T) {
	for _, tc := range []struct {
		option, pipeline, context string
		want                      namespaceTarget
	}{
		{"opt", "pipe", "ctx", namespaceTarget{"opt", true, "the --namespace option"}},
		{"", "pipe", "ctx", namespaceTarget{"pipe", true, "the pipeline's namespace"}},
		{"", "", "ctx", namespaceTarget{"ctx", false, "the kubeconfig context's namespace"}},
		{"", "", "", namespaceTarget{"default", false, "the default namespace"}},
	} {
		if got := targetNamespace(tc.option, tc.pipeline, tc.context); got != tc.want {
			t.Errorf("targetNamespace(%q, %q, %q) = %+v, want %+v", tc.option, tc.pipeline, tc.context, got, tc.want)
		}
	}
}

func TestPlanNamespacesOrderAndKinds(t *testing.T) {
	log := &testLog{t: t}
	a := &applier{mapper: newStaticMapper(), log: log}
	objs := []Object{
		obj(t, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: hello}\n"),
		obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: other}\n"),
		obj(t, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"),
		obj(t, "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\nspec: {group: example.com, scope: Namespaced, names: {kind: Widget, plural: widgets}}\n"),
		obj(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: demo, namespace: ignored}\n"),
	}
	// The context's namespace is only a default: the ConfigMap keeps its own.
	steps, err := a.plan(objs, namespaceTarget{name: "demo", from: "the kubeconfig context's namespace"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range steps {
		got = append(got, s.desc())
	}
	want := []string{
		"namespace/demo",
		"customresourcedefinition.apiextensions.k8s.io/widgets.example.com",
		"deployment.apps/hello in namespace demo",
		"configmap/cm in namespace other",
		"widget.example.com/w in namespace demo",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if steps[4].mapping != nil {
		t.Error("the Widget was mapped before its CRD was applied")
	}
	if objs[0].GetNamespace() != "demo" || objs[4].GetNamespace() != "" {
		t.Errorf("namespaces set in the objects: %q, %q", objs[0].GetNamespace(), objs[4].GetNamespace())
	}
	if !log.has(`Namespace demo is cluster-scoped; its metadata.namespace "ignored" is ignored`) {
		t.Error("no warning for the namespace of a cluster-scoped object")
	}
}

func TestPlanErrors(t *testing.T) {
	a := &applier{mapper: newStaticMapper(), log: &testLog{t: t}}
	explicit := namespaceTarget{name: "demo", explicit: true, from: "the pipeline's namespace"}
	_, err := a.plan([]Object{
		obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: other}\n"),
	}, explicit)
	wantErr(t, err, `test.yaml:1 (document 1): ConfigMap cm has metadata.namespace "other", but this deploy targets namespace "demo" (the pipeline's namespace)`)

	_, err = a.plan([]Object{
		obj(t, "apiVersion: apps/v1beta1\nkind: Deployment\nmetadata: {name: old}\n"),
	}, explicit)
	wantErr(t, err, "test.yaml:1 (document 1): the API server serves no kind Deployment in apps/v1beta1")

	_, err = a.plan([]Object{
		obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n"),
		obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: demo}\n"),
	}, explicit)
	wantErr(t, err, "test.yaml:1 (document 1): configmap/cm in namespace demo is also defined at test.yaml:1 (document 1)")
}

func TestChangeAction(t *testing.T) {
	mk := func(rv string, replicas int64, status string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{}}
		u.SetResourceVersion(rv)
		unstructured.SetNestedField(u.Object, replicas, "spec", "replicas")
		unstructured.SetNestedField(u.Object, status, "status", "phase")
		return u
	}
	for _, tc := range []struct {
		before, after *unstructured.Unstructured
		want          string
	}{
		{nil, mk("1", 1, ""), ActionCreated},
		{mk("5", 1, "a"), mk("5", 1, "a"), ActionUnchanged},
		{mk("5", 1, "a"), mk("6", 1, "b"), ActionUnchanged}, // only status moved (a controller)
		{mk("5", 1, "a"), mk("6", 2, "a"), ActionConfigured},
	} {
		if got := changeAction(tc.before, tc.after); got != tc.want {
			t.Errorf("changeAction(%v, %v) = %s, want %s", tc.before, tc.after, got, tc.want)
		}
	}
	c := Change{Kind: "Deployment", Group: "apps", Name: "hello", Action: ActionConfigured}
	if c.String() != "deployment.apps/hello configured" {
		t.Errorf("Change prints as %q", c)
	}
	if c := (Change{Kind: "Service", Name: "hello", Action: ActionUnchanged}); c.String() != "service/hello unchanged" {
		t.Errorf("Change prints as %q", c)
	}
}

func TestRunFailsBeforeConnectingOnBadManifests(t *testing.T) {
	_, err := Run(context.Background(), &spec.Deploy{Manifests: []string{"bad/nokind.yaml"}}, "demo",
		Options{BaseDir: "testdata", Kubeconfig: "/nonexistent/kubeconfig"})
	wantErr(t, err, "bad/nokind.yaml:6 (document 2): object has no kind")
}
