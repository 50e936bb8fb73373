package deploystage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	typedappsv1 "k8s.io/client-go/kubernetes/typed/apps/v1"
)

// RolloutError is a Deployment whose rollout did not complete: its progress deadline was
// exceeded, or the deploy's timeout ran out. Reasons are what its pods and events say.
type RolloutError struct {
	Object  string // "deployment.apps/hello in namespace demo"
	Source  Source
	Cause   string   // "not complete after 5m0s: 1 of 3 updated replicas are available"
	Reasons []string // one line each: "pod hello-7d9-x2: container app: ImagePullBackOff (image ...): ..."
}

func (e *RolloutError) Error() string {
	msg := fmt.Sprintf("%s, %s: rollout %s", e.Object, e.Source, e.Cause)
	if len(e.Reasons) > 0 {
		msg += "\n  " + strings.Join(e.Reasons, "\n  ")
	}
	return msg
}

// waiter follows Deployment rollouts with watches, re-listing when a watch ends or fails.
type waiter struct {
	kube  kubernetes.Interface
	log   Logger
	every time.Duration // how often to log a rollout that is not moving
}

var (
	errDeleted          = errors.New("the Deployment was deleted while its rollout was followed")
	errProgressDeadline = errors.New("progress deadline exceeded")
)

// waitAll follows every rollout at once, all bounded by timeout; it reports every failure.
func (w *waiter) waitAll(ctx context.Context, rollouts []rollout, timeout time.Duration) error {
	w.log.Infof("Waiting up to %s for the rollout of %s", timeout, count(len(rollouts), "Deployment"))
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	errs := make([]error, len(rollouts))
	var wg sync.WaitGroup
	for i, r := range rollouts {
		wg.Go(func() { errs[i] = w.wait(ctx, wctx, r, timeout) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// wait follows one rollout until it completes, fails, or wctx ends; ctx is the caller's, to tell
// a cancelled deploy from a timeout.
func (w *waiter) wait(ctx, wctx context.Context, r rollout, timeout time.Duration) error {
	start := time.Now()
	var mu sync.Mutex
	var last *appsv1.Deployment
	var msg string
	stop := w.logWhileWaiting(r, start, func() string { mu.Lock(); defer mu.Unlock(); return msg })
	err := w.follow(wctx, r.namespace, r.name, func(d *appsv1.Deployment) (bool, error) {
		st := rolloutStatus(d, r.generation)
		mu.Lock()
		changed := st.message != msg
		last, msg = d, st.message
		mu.Unlock()
		if changed && !st.done {
			w.log.Infof("%s: %s", r.desc, st.message)
		}
		if st.failed {
			return false, errProgressDeadline
		}
		return st.done, nil
	})
	stop()
	switch {
	case err == nil:
		w.log.Infof("%s successfully rolled out in %s", r.desc, time.Since(start).Round(time.Millisecond))
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("%s, %s: waiting for the rollout: %w", r.desc, r.src, ctx.Err())
	case errors.Is(err, errProgressDeadline):
		return w.failure(ctx, r, last, "failed: "+progressMessage(last))
	case wctx.Err() != nil:
		if msg == "" {
			msg = "the Deployment could not be read: " + err.Error()
		}
		return w.failure(ctx, r, last, fmt.Sprintf("not complete after %s: %s", timeout, msg))
	}
	if apierrors.IsForbidden(err) {
		err = fmt.Errorf("%w (following a rollout needs list and watch on deployments.apps)", err)
	}
	return fmt.Errorf("%s, %s: following the rollout: %w", r.desc, r.src, err)
}

// logWhileWaiting logs the rollout's state every w.every while it does not move; the returned
// func stops it.
func (w *waiter) logWhileWaiting(r rollout, start time.Time, state func() string) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(w.every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				w.log.Infof("%s: still waiting after %s: %s", r.desc, time.Since(start).Round(time.Second), state())
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// failure builds the RolloutError with the reasons the Deployment's pods give; it reads them
// with a fresh deadline, since the wait's own may be spent.
func (w *waiter) failure(ctx context.Context, r rollout, d *appsv1.Deployment, cause string) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
	defer cancel()
	return &RolloutError{Object: r.desc, Source: r.src, Cause: cause, Reasons: w.reasons(rctx, d)}
}

func progressMessage(d *appsv1.Deployment) string {
	if c := deploymentCondition(d, appsv1.DeploymentProgressing); c != nil && c.Message != "" {
		return "progress deadline exceeded: " + c.Message
	}
	return "progress deadline exceeded"
}

// follow calls check with the Deployment's state, first from a list, then from a watch, until
// check says done or fails. A watch that ends or expires is resumed by listing again; transient
// errors are retried; refusals (forbidden, not found) end it.
func (w *waiter) follow(ctx context.Context, ns, name string, check func(*appsv1.Deployment) (bool, error)) error {
	api := w.kube.AppsV1().Deployments(ns)
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	for {
		done, err := listAndWatch(ctx, api, sel, check)
		switch {
		case done:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil:
			continue // the watch ended: list again
		case !transient(err):
			return err
		}
		w.log.Warnf("deployment %s in namespace %s: %v; retrying", name, ns, err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func listAndWatch(ctx context.Context, api typedappsv1.DeploymentInterface, sel string, check func(*appsv1.Deployment) (bool, error)) (bool, error) {
	list, err := api.List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		return false, err
	}
	if len(list.Items) == 0 {
		return false, errDeleted
	}
	if done, err := check(&list.Items[0]); done || err != nil {
		return done, err
	}
	wt, err := api.Watch(ctx, metav1.ListOptions{FieldSelector: sel, ResourceVersion: list.ResourceVersion, AllowWatchBookmarks: true})
	if err != nil {
		return false, err
	}
	defer wt.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case ev, ok := <-wt.ResultChan():
			if !ok {
				return false, nil
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				if d, ok := ev.Object.(*appsv1.Deployment); ok {
					if done, err := check(d); done || err != nil {
						return done, err
					}
				}
			case watch.Deleted:
				return false, errDeleted
			case watch.Error:
				err := apierrors.FromObject(ev.Object)
				if apierrors.IsGone(err) || apierrors.IsResourceExpired(err) {
					return false, nil // the watch fell too far behind: list again
				}
				return false, err
			}
		}
	}
}

// transient tells errors worth retrying: the connection, the server busy, a watch expired.
func transient(err error) bool {
	return errNotReachable(err) || apierrors.IsGone(err) || apierrors.IsResourceExpired(err) || apierrors.IsServerTimeout(err) ||
		apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) || apierrors.IsInternalError(err) ||
		apierrors.IsServiceUnavailable(err)
}

// status is a Deployment's rollout state as kubectl rollout status judges it.
type status struct {
	message string
	done    bool
	failed  bool
}

// rolloutStatus judges d, which must have been observed at generation gen or later.
func rolloutStatus(d *appsv1.Deployment, gen int64) status {
	if gen < d.Generation {
		gen = d.Generation
	}
	if d.Status.ObservedGeneration < gen {
		return status{message: fmt.Sprintf("waiting for the Deployment controller to observe generation %d", gen)}
	}
	if c := deploymentCondition(d, appsv1.DeploymentProgressing); c != nil && c.Reason == "ProgressDeadlineExceeded" {
		return status{message: "progress deadline exceeded", failed: true}
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	switch {
	case s.UpdatedReplicas < want:
		return status{message: fmt.Sprintf("%d of %d new replicas have been updated", s.UpdatedReplicas, want)}
	case s.Replicas > s.UpdatedReplicas:
		return status{message: fmt.Sprintf("%d old replicas are pending termination", s.Replicas-s.UpdatedReplicas)}
	case s.AvailableReplicas < s.UpdatedReplicas:
		return status{message: fmt.Sprintf("%d of %d updated replicas are available", s.AvailableReplicas, s.UpdatedReplicas)}
	}
	return status{message: "rolled out", done: true}
}

func deploymentCondition(d *appsv1.Deployment, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	if d == nil {
		return nil
	}
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == t {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
