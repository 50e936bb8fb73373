// Package deploystage is the pipeline's deploy stage: it reads the manifests, substitutes the
// replacements (the build number into image tags), applies every object with server-side apply
// as field manager "kiln", reports what was created, configured or left unchanged, and follows
// each Deployment's rollout until it completes, or fails with the reasons its pods give.
//
// Decisions a user may trip on:
//   - Conflicts: the pipeline's manifests are the source of truth for the fields they set, so a
//     field another manager owns (kubectl edit, kubectl scale) is taken over, as Argo CD and Flux
//     do; kubectl apply --server-side would refuse (force=false). Each takeover is logged as a
//     warning naming the fields and their previous managers. Leave fields that another
//     controller owns (replicas under an autoscaler) out of the manifests.
//   - Namespaces: a namespaced object without a namespace goes to the target namespace: Options.Namespace,
//     else the pipeline's, else the kubeconfig context's (a pod's own in a cluster). An object
//     whose own namespace differs from a target that was given explicitly (Options or the
//     pipeline) is an error, as kubectl's with --namespace; when the target is only the
//     context's default, the object's own namespace wins, as kubectl's without --namespace.
//   - Order: Namespaces, then CustomResourceDefinitions, then everything else in file order, so
//     objects may be put in a namespace, or be of a kind, defined in the same manifests.
//   - Changes: an object is "unchanged" when the apply left it as it was, less its status and
//     managedFields (taking over a field with the same value changes nothing a user sees).
//   - Waiting follows Deployments only, judged as kubectl rollout status judges them; other kinds
//     (StatefulSets, DaemonSets) are applied, not followed. deploy.timeout bounds the wait for
//     all of them together.
package deploystage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kilnbuild/kiln/pipeline/spec"
)

// FieldManager is the server-side apply field manager of every object the stage applies.
const FieldManager = "kiln"

// Logger receives progress; the executor's logger satisfies it.
type Logger interface {
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
}

// Options configures Run.
type Options struct {
	// Kubeconfig is the kubeconfig file; "" = client-go's default loading rules ($KUBECONFIG,
	// ~/.kube/config), then the pod's service account (in-cluster).
	Kubeconfig string
	// Namespace overrides the pipeline's namespace; "" = the pipeline's, then the kubeconfig
	// context's.
	Namespace string
	// BaseDir is the directory manifests are relative to (the workspace).
	BaseDir string
	// Wait overrides deploy.wait.
	Wait *bool
	// Log receives progress and the changes; nil discards them.
	Log Logger
}

// Change is what applying one object did.
type Change struct {
	Kind      string // as in the manifest: "Deployment"
	Group     string // API group: "apps"; "" for the core group
	Namespace string // "" for cluster-scoped objects
	Name      string
	Action    string // ActionCreated, ActionConfigured or ActionUnchanged
}

// Actions of a Change.
const (
	ActionCreated    = "created"
	ActionConfigured = "configured"
	ActionUnchanged  = "unchanged"
)

// Ref is the object as kubectl names it: "deployment.apps/hello", "service/hello".
func (c Change) Ref() string { return objectRef(c.Kind, c.Group, c.Name) }

// String is the line kubectl prints: "deployment.apps/hello configured".
func (c Change) String() string { return c.Ref() + " " + c.Action }

func objectRef(kind, group, name string) string {
	k := strings.ToLower(kind)
	if group != "" {
		k += "." + group
	}
	return k + "/" + name
}

// Run deploys: it reads and substitutes d's manifests, applies them to the cluster of the
// kubeconfig in the target namespace (see the package comment; namespace is the pipeline's),
// and waits for the Deployments' rollouts when d says so (Options.Wait overrides). The changes
// made before a failure are returned with the error.
func Run(ctx context.Context, d *spec.Deploy, namespace string, o Options) ([]Change, error) {
	log := o.Log
	if log == nil {
		log = nopLogger{}
	}
	objs, err := ReadManifests(o.BaseDir, d)
	if err != nil {
		return nil, err
	}
	kc, err := loadKubeconfig(o.Kubeconfig)
	if err != nil {
		return nil, err
	}
	c, err := connect(ctx, kc, log)
	if err != nil {
		return nil, err
	}
	target := targetNamespace(o.Namespace, namespace, c.namespace)
	a := &applier{dyn: c.dyn, mapper: c.mapper, log: log}
	plan, err := a.plan(objs, target)
	if err != nil {
		return nil, err
	}
	log.Infof("Applying %s from %s to namespace %s as field manager %q",
		count(len(plan), "object"), count(len(d.Manifests), "manifest"), target.name, FieldManager)
	start := time.Now()
	changes, rollouts, err := a.applyAll(ctx, plan)
	if err != nil {
		return changes, err
	}
	log.Infof("Applied %s in %s", count(len(changes), "object"), time.Since(start).Round(time.Millisecond))
	wait, timeout := waitOptions(d, o)
	if !wait || len(rollouts) == 0 {
		return changes, nil
	}
	w := &waiter{kube: c.kube, log: log, every: 30 * time.Second}
	return changes, w.waitAll(ctx, rollouts, timeout)
}

// waitOptions tells whether to follow rollouts (deploy.wait, overridden by Options.Wait) and
// for how long (deploy.timeout, default spec.DefaultTimeout).
func waitOptions(d *spec.Deploy, o Options) (bool, time.Duration) {
	wait := d.ShouldWait()
	if o.Wait != nil {
		wait = *o.Wait
	}
	return wait, d.TimeoutOrDefault()
}

// namespaceTarget is where namespaced objects without a namespace go, and whether it was asked
// for explicitly (Options or the pipeline), which makes a different namespace in an object an error.
type namespaceTarget struct {
	name     string
	explicit bool
	from     string
}

func targetNamespace(option, pipeline, context string) namespaceTarget {
	switch {
	case option != "":
		return namespaceTarget{option, true, "the --namespace option"}
	case pipeline != "":
		return namespaceTarget{pipeline, true, "the pipeline's namespace"}
	case context != "":
		return namespaceTarget{context, false, "the kubeconfig context's namespace"}
	}
	return namespaceTarget{"default", false, "the default namespace"}
}

// count says "1 object", "2 objects".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

type nopLogger struct{}

func (nopLogger) Infof(string, ...any) {}
func (nopLogger) Warnf(string, ...any) {}
