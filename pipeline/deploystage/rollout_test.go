package deploystage

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func deployment(gen, observed int64, replicas, updated, available, total int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: "demo", Generation: gen},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "hello"}},
		},
		Status: appsv1.DeploymentStatus{ObservedGeneration: observed, Replicas: total, UpdatedReplicas: updated, AvailableReplicas: available},
	}
}

func TestRolloutStatus(t *testing.T) {
	deadline := deployment(2, 2, 1, 0, 0, 1)
	deadline.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded"}}
	for _, tc := range []struct {
		d    *appsv1.Deployment
		gen  int64
		want status
	}{
		{deployment(2, 1, 3, 3, 3, 3), 2, status{message: "waiting for the Deployment controller to observe generation 2"}},
		{deployment(2, 2, 3, 3, 3, 3), 3, status{message: "waiting for the Deployment controller to observe generation 3"}},
		{deployment(2, 2, 3, 1, 1, 4), 2, status{message: "1 of 3 new replicas have been updated"}},
		{deployment(2, 2, 3, 3, 2, 4), 2, status{message: "1 old replicas are pending termination"}},
		{deployment(2, 2, 3, 3, 2, 3), 2, status{message: "2 of 3 updated replicas are available"}},
		{deployment(2, 2, 3, 3, 3, 3), 2, status{message: "rolled out", done: true}},
		{deployment(2, 3, 0, 0, 0, 0), 2, status{message: "rolled out", done: true}},
		{deadline, 2, status{message: "progress deadline exceeded", failed: true}},
	} {
		if got := rolloutStatus(tc.d, tc.gen); got != tc.want {
			t.Errorf("rolloutStatus(%+v, %d) = %+v, want %+v", tc.d.Status, tc.gen, got, tc.want)
		}
	}
}

// watching waits until the fake client has a watch on deployments open, so that what the test
// changes next arrives as an event.
func watching(t *testing.T, cs *fake.Clientset, n int) {
	t.Helper()
	for i := 0; i < 2000; i++ {
		w := 0
		for _, a := range cs.Actions() {
			if a.GetVerb() == "watch" && a.GetResource().Resource == "deployments" {
				w++
			}
		}
		if w >= n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the waiter never watched the deployment")
}

func TestWaitFollowsTheRolloutToCompletion(t *testing.T) {
	cs := fake.NewClientset(deployment(2, 1, 2, 0, 0, 2))
	log := &testLog{t: t}
	w := &waiter{kube: cs, log: log, every: time.Hour}
	r := rollout{desc: "deployment.apps/hello in namespace demo", namespace: "demo", name: "hello", generation: 2}
	errc := make(chan error, 1)
	go func() { errc <- w.waitAll(context.Background(), []rollout{r}, time.Hour) }()

	watching(t, cs, 1)
	api := cs.AppsV1().Deployments("demo")
	for _, st := range []appsv1.DeploymentStatus{
		{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 1},
		{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 1},
		{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 2},
	} {
		d := deployment(2, 0, 2, 0, 0, 0)
		d.Status = st
		if _, err := api.UpdateStatus(context.Background(), d, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"deployment.apps/hello in namespace demo: waiting for the Deployment controller to observe generation 2",
		"deployment.apps/hello in namespace demo: 1 of 2 new replicas have been updated",
		"deployment.apps/hello in namespace demo: 1 of 2 updated replicas are available",
		"deployment.apps/hello in namespace demo successfully rolled out in",
	} {
		if !log.has(s) {
			t.Errorf("not logged: %q", s)
		}
	}
}

// stuckPod is a pod of the Deployment whose image cannot be pulled, and that failed its
// readiness probe earlier, with the events the kubelet records for both.
func stuckPod() []runtime.Object {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "hello-5d9c7-x2x4z", Namespace: "demo", UID: types.UID("pod-uid"), Labels: map[string]string{"app": "hello"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "localhost:5000/hello:2"}}},
		Status: corev1.PodStatus{
			Phase:      corev1.PodPending,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
				Reason: "ImagePullBackOff", Message: `Back-off pulling image "localhost:5000/hello:2"`}}}},
		},
	}
	ready := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "hello-old-aaaaa", Namespace: "demo", Labels: map[string]string{"app": "hello"}},
		Status:     corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
	ev := func(name, reason, msg string, count int32, at time.Time) *corev1.Event {
		return &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: name, Namespace: "demo"},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: pod.Name, Namespace: "demo", UID: pod.UID},
			Type:           corev1.EventTypeWarning, Reason: reason, Message: msg, Count: count,
			LastTimestamp: metav1.NewTime(at),
		}
	}
	now := time.Now()
	normal := ev("e0", "Pulling", "Pulling image", 1, now)
	normal.Type = corev1.EventTypeNormal
	return []runtime.Object{pod, ready, normal,
		ev("e1", "Unhealthy", "Readiness probe failed: Get \"http://10.0.0.5:8080/\":\n dial tcp 10.0.0.5:8080: connect: connection refused", 4, now.Add(-time.Minute)),
		ev("e2", "Failed", "Error: ImagePullBackOff", 2, now),
	}
}

func TestWaitTimesOutWithThePodsReasons(t *testing.T) {
	objs := append([]runtime.Object{deployment(3, 3, 1, 1, 0, 1)}, stuckPod()...)
	cs := fake.NewClientset(objs...)
	w := &waiter{kube: cs, log: &testLog{t: t}, every: time.Hour}
	r := rollout{desc: "deployment.apps/hello in namespace demo", src: Source{"k8s/app.yaml", 1, 1, 0}, namespace: "demo", name: "hello", generation: 3}
	err := w.waitAll(context.Background(), []rollout{r}, 300*time.Millisecond)
	var re *RolloutError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not a RolloutError", err)
	}
	t.Logf("error:\n%v", err)
	want := []string{
		"pod hello-5d9c7-x2x4z: container app: ImagePullBackOff (image localhost:5000/hello:2): Back-off pulling image \"localhost:5000/hello:2\"",
		"pod hello-5d9c7-x2x4z: Failed: Error: ImagePullBackOff (2 times)",
		"pod hello-5d9c7-x2x4z: Unhealthy: Readiness probe failed: Get \"http://10.0.0.5:8080/\": dial tcp 10.0.0.5:8080: connect: connection refused (4 times)",
	}
	if strings.Join(re.Reasons, "\n") != strings.Join(want, "\n") {
		t.Errorf("reasons:\n%s\nwant:\n%s", strings.Join(re.Reasons, "\n"), strings.Join(want, "\n"))
	}
	if !strings.HasPrefix(err.Error(), "deployment.apps/hello in namespace demo, k8s/app.yaml:1 (document 1): rollout not complete after 300ms: 0 of 1 updated replicas are available\n  pod hello-5d9c7-x2x4z: container app: ImagePullBackOff") {
		t.Errorf("error reads %q", err)
	}
}

func TestWaitFailsOnProgressDeadline(t *testing.T) {
	d := deployment(3, 3, 1, 1, 0, 1)
	d.Status.Conditions = []appsv1.DeploymentCondition{
		{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "hello-5d9c7" has timed out progressing.`},
		{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate", Message: `pods "hello-5d9c7-" is forbidden: exceeded quota: compute`},
	}
	cs := fake.NewClientset(d)
	w := &waiter{kube: cs, log: &testLog{t: t}, every: time.Hour}
	r := rollout{desc: "deployment.apps/hello in namespace demo", namespace: "demo", name: "hello", generation: 3}
	err := w.waitAll(context.Background(), []rollout{r}, time.Hour) // fails at once, long before
	wantErr(t, err, `rollout failed: progress deadline exceeded: ReplicaSet "hello-5d9c7" has timed out progressing.`)
	wantErr(t, err, "\n  FailedCreate: pods \"hello-5d9c7-\" is forbidden: exceeded quota: compute\n  no pod matches the Deployment's selector app=hello")
}

func TestWaitEndsWhenTheDeploymentIsDeletedOrRefused(t *testing.T) {
	cs := fake.NewClientset(deployment(2, 1, 1, 0, 0, 0))
	w := &waiter{kube: cs, log: &testLog{t: t}, every: time.Hour}
	r := rollout{desc: "deployment.apps/hello in namespace demo", namespace: "demo", name: "hello", generation: 2}
	errc := make(chan error, 1)
	go func() { errc <- w.waitAll(context.Background(), []rollout{r}, time.Hour) }()
	watching(t, cs, 1)
	if err := cs.AppsV1().Deployments("demo").Delete(context.Background(), "hello", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, <-errc, "deployment.apps/hello in namespace demo, :0 (document 0): following the rollout: the Deployment was deleted")

	cs = fake.NewClientset()
	cs.PrependReactor("list", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "", errors.New("no list for you"))
	})
	w.kube = cs
	wantErr(t, w.waitAll(context.Background(), []rollout{r}, time.Hour), "following the rollout: deployments.apps is forbidden: no list for you")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	wantErr(t, w.waitAll(ctx, []rollout{r}, time.Hour), "waiting for the rollout: context canceled")
}
