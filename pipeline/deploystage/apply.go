package deploystage

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// crdWait bounds how long a kind defined by a CustomResourceDefinition of the same deploy may
// take to be served after its definition is applied.
const crdWait = 30 * time.Second

var (
	namespaceKind = schema.GroupKind{Kind: "Namespace"}
	crdKind       = schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}
	deployKind    = schema.GroupKind{Group: "apps", Kind: "Deployment"}
)

// applier applies objects with server-side apply through the dynamic client, any kind the
// RESTMapper (from the server's discovery) knows.
type applier struct {
	dyn    dynamic.Interface
	mapper meta.ResettableRESTMapper
	log    Logger
}

// step is one object ready to apply: its REST mapping (nil until the CRD defining its kind is
// served) and its namespace ("" when cluster-scoped).
type step struct {
	obj       Object
	mapping   *meta.RESTMapping
	namespace string
}

func (s *step) gk() schema.GroupKind { return s.obj.GroupVersionKind().GroupKind() }

// desc names the object for messages: "deployment.apps/hello in namespace demo".
func (s *step) desc() string {
	d := objectRef(s.obj.GetKind(), s.gk().Group, s.obj.GetName())
	if s.namespace != "" {
		d += " in namespace " + s.namespace
	}
	return d
}

// errorf wraps err with the object and where it is written.
func (s *step) errorf(err error, format string, args ...any) error {
	return fmt.Errorf("%s, %s: %s: %w", s.desc(), s.obj.Source, fmt.Sprintf(format, args...), err)
}

// rollout is an applied Deployment to follow.
type rollout struct {
	desc       string
	src        Source
	namespace  string
	name       string
	generation int64
}

// plan maps every object to its resource and namespace and puts them in apply order. Every
// error it can find (unknown kinds, namespace conflicts, duplicates) comes before anything is
// applied.
func (a *applier) plan(objs []Object, t namespaceTarget) ([]step, error) {
	defined := crdScopes(objs)
	seen := map[string]Source{}
	steps := make([]step, 0, len(objs))
	for _, o := range objs {
		s := step{obj: o}
		gvk := o.GroupVersionKind()
		m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		namespaced, byCRD := defined[gvk.GroupKind()]
		switch {
		case err == nil:
			s.mapping = m
			namespaced = m.Scope.Name() == meta.RESTScopeNameNamespace
		case meta.IsNoMatchError(err) && byCRD:
			// served once its CustomResourceDefinition, applied first, is established
		case meta.IsNoMatchError(err):
			return nil, fmt.Errorf("%s: the API server serves no kind %s in %s (a typo in apiVersion or kind, or a CustomResourceDefinition not installed)",
				o.Source, gvk.Kind, gvk.GroupVersion())
		default:
			return nil, fmt.Errorf("%s: %s %s: discovery: %w", o.Source, o.GetAPIVersion(), gvk.Kind, err)
		}
		if s.namespace, err = a.namespaceOf(o, namespaced, t); err != nil {
			return nil, err
		}
		key := gvk.GroupKind().String() + "/" + s.namespace + "/" + o.GetName()
		if prev, ok := seen[key]; ok {
			return nil, fmt.Errorf("%s: %s is also defined at %s", o.Source, s.desc(), prev)
		}
		seen[key] = o.Source
		steps = append(steps, s)
	}
	sort.SliceStable(steps, func(i, j int) bool { return applyRank(steps[i].gk()) < applyRank(steps[j].gk()) })
	return steps, nil
}

func applyRank(gk schema.GroupKind) int {
	switch gk {
	case namespaceKind:
		return 0
	case crdKind:
		return 1
	}
	return 2
}

// namespaceOf decides an object's namespace and sets it in the object (see the package comment).
func (a *applier) namespaceOf(o Object, namespaced bool, t namespaceTarget) (string, error) {
	ns := o.GetNamespace()
	switch {
	case !namespaced && ns != "":
		a.log.Warnf("%s: %s %s is cluster-scoped; its metadata.namespace %q is ignored", o.Source, o.GetKind(), o.GetName(), ns)
		o.SetNamespace("")
		return "", nil
	case !namespaced:
		return "", nil
	case ns == "":
		o.SetNamespace(t.name)
		return t.name, nil
	case ns != t.name && t.explicit:
		return "", fmt.Errorf("%s: %s %s has metadata.namespace %q, but this deploy targets namespace %q (%s); remove metadata.namespace from the manifest or make the two agree",
			o.Source, o.GetKind(), o.GetName(), ns, t.name, t.from)
	}
	return ns, nil
}

// crdScopes finds the kinds the objects define with CustomResourceDefinitions, and whether each
// is namespaced.
func crdScopes(objs []Object) map[schema.GroupKind]bool {
	kinds := map[schema.GroupKind]bool{}
	for _, o := range objs {
		if o.GroupVersionKind().GroupKind() != crdKind {
			continue
		}
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
		kinds[schema.GroupKind{Group: group, Kind: kind}] = scope != "Cluster"
	}
	return kinds
}

// applyAll applies the steps in order, logging each change; it stops at the first failure.
func (a *applier) applyAll(ctx context.Context, steps []step) ([]Change, []rollout, error) {
	var changes []Change
	var rollouts []rollout
	for i := range steps {
		s := &steps[i]
		if s.mapping == nil {
			if err := a.awaitKind(ctx, s); err != nil {
				return changes, rollouts, err
			}
		}
		after, action, err := a.apply(ctx, s)
		if err != nil {
			return changes, rollouts, err
		}
		c := Change{Kind: s.obj.GetKind(), Group: s.gk().Group, Namespace: s.namespace, Name: s.obj.GetName(), Action: action}
		a.log.Infof("%s", c)
		changes = append(changes, c)
		if s.gk() == deployKind {
			rollouts = append(rollouts, rollout{desc: s.desc(), src: s.obj.Source, namespace: s.namespace,
				name: s.obj.GetName(), generation: after.GetGeneration()})
		}
	}
	return changes, rollouts, nil
}

// awaitKind waits for the server to serve a kind whose CustomResourceDefinition was just applied.
func (a *applier) awaitKind(ctx context.Context, s *step) error {
	gvk := s.obj.GroupVersionKind()
	deadline := time.Now().Add(crdWait)
	for {
		a.mapper.Reset()
		m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err == nil {
			s.mapping = m
			return nil
		}
		if !meta.IsNoMatchError(err) || time.Now().After(deadline) {
			return s.errorf(err, "kind %s of %s not served %s after its CustomResourceDefinition was applied", gvk.Kind, gvk.GroupVersion(), crdWait)
		}
		select {
		case <-ctx.Done():
			return s.errorf(ctx.Err(), "waiting for kind %s", gvk.Kind)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// apply applies one object and tells what it changed: it reads the object first, then compares
// (see changeAction).
func (a *applier) apply(ctx context.Context, s *step) (*unstructured.Unstructured, string, error) {
	var ri dynamic.ResourceInterface = a.dyn.Resource(s.mapping.Resource)
	if s.namespace != "" {
		ri = a.dyn.Resource(s.mapping.Resource).Namespace(s.namespace)
	}
	res := s.mapping.Resource.GroupResource().String()
	name := s.obj.GetName()
	before, err := ri.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		before, err = nil, nil
	}
	if err != nil {
		return nil, "", s.errorf(explain(err, res), "read")
	}
	body, err := s.obj.MarshalJSON()
	if err != nil {
		return nil, "", s.errorf(err, "encode")
	}
	after, err := applyPatch(ctx, ri, name, body, false)
	if apierrors.HasStatusCause(err, metav1.CauseTypeFieldManagerConflict) {
		a.log.Warnf("%s: taking over fields another manager set: %v", s.desc(), err)
		after, err = applyPatch(ctx, ri, name, body, true)
	}
	if err != nil {
		return nil, "", s.errorf(explain(err, res), "apply")
	}
	return after, changeAction(before, after), nil
}

func applyPatch(ctx context.Context, ri dynamic.ResourceInterface, name string, body []byte, force bool) (*unstructured.Unstructured, error) {
	return ri.Patch(ctx, name, types.ApplyPatchType, body, metav1.PatchOptions{
		FieldManager:    FieldManager,
		Force:           &force,
		FieldValidation: metav1.FieldValidationStrict, // unknown and duplicate fields are errors, as kubectl's default
	})
}

// changeAction compares the object before and after the apply. An unchanged object keeps its
// resourceVersion (the server skips writes that change nothing); when it moved, the content
// decides, less what the apply does not set (status, managedFields), so a controller's status
// update between the read and the apply is not taken for a change.
func changeAction(before, after *unstructured.Unstructured) string {
	switch {
	case before == nil:
		return ActionCreated
	case before.GetResourceVersion() == after.GetResourceVersion():
		return ActionUnchanged
	case equality.Semantic.DeepEqual(content(before), content(after)):
		return ActionUnchanged
	}
	return ActionConfigured
}

func content(u *unstructured.Unstructured) map[string]any {
	c := u.DeepCopy().Object
	delete(c, "status")
	unstructured.RemoveNestedField(c, "metadata", "resourceVersion")
	unstructured.RemoveNestedField(c, "metadata", "managedFields")
	return c
}

// explain adds what the user must fix to errors whose cause is not in the server's message.
func explain(err error, resource string) error {
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%w (server-side apply needs get, create and patch on %s)", err, resource)
	case errNotReachable(err) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("API server unreachable: %w", err)
	}
	return err
}
