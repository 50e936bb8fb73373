package deploystage

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

// Limits on what a failed rollout reports, so a Deployment of 50 crashing pods stays readable.
const (
	maxReasons      = 30
	maxPodEvents    = 3
	maxReasonLength = 400
)

// imageReasons are the waiting reasons caused by the image; their message gets the image named.
var imageReasons = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true,
	"ErrImageNeverPull": true, "RegistryUnavailable": true, "ImageInspectError": true,
}

// reasons says why d's rollout is stuck: the Deployment's conditions, then for every pod of it
// that is not ready, its scheduling, its containers' states and its warning events (failing
// probes are events, reason Unhealthy). It never fails: what it cannot read, it says.
func (w *waiter) reasons(ctx context.Context, d *appsv1.Deployment) []string {
	if d == nil {
		return nil
	}
	var out []string
	if d.Status.ObservedGeneration < d.Generation {
		out = append(out, fmt.Sprintf("the Deployment controller has not observed generation %d (it saw %d): is kube-controller-manager running?",
			d.Generation, d.Status.ObservedGeneration))
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue {
			out = append(out, fmt.Sprintf("%s: %s", c.Reason, oneLine(c.Message)))
		}
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return append(out, fmt.Sprintf("the Deployment's selector: %v", err))
	}
	pods, err := w.kube.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return append(out, fmt.Sprintf("cannot list the Deployment's pods: %v", err))
	}
	if len(pods.Items) == 0 {
		return append(out, fmt.Sprintf("no pod matches the Deployment's selector %s", sel))
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp != nil || podReady(p) {
			continue
		}
		out = append(out, podReasons(p)...)
		out = append(out, w.podEvents(ctx, p)...)
	}
	if len(out) > maxReasons {
		out = append(out[:maxReasons], fmt.Sprintf("... and %d more", len(out)-maxReasons))
	}
	return out
}

// podReasons reads a pod's status: unschedulable, containers waiting or failed.
func podReasons(p *corev1.Pod) []string {
	var out []string
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			out = append(out, fmt.Sprintf("pod %s: not scheduled: %s: %s", p.Name, c.Reason, oneLine(c.Message)))
		}
	}
	if p.Status.Reason != "" {
		out = append(out, fmt.Sprintf("pod %s: %s: %s", p.Name, p.Status.Reason, oneLine(p.Status.Message)))
	}
	statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, cs := range statuses {
		if r := containerReason(p, cs); r != "" {
			out = append(out, fmt.Sprintf("pod %s: container %s: %s", p.Name, cs.Name, r))
		}
	}
	if len(out) == 0 && p.Status.Phase == corev1.PodPending && len(statuses) == 0 {
		out = append(out, fmt.Sprintf("pod %s: Pending (no node has started it)", p.Name))
	}
	return out
}

func containerReason(p *corev1.Pod, cs corev1.ContainerStatus) string {
	switch st := cs.State; {
	case st.Waiting != nil && st.Waiting.Reason != "":
		r := st.Waiting.Reason
		if imageReasons[r] {
			r += " (image " + containerImage(p, cs) + ")"
		}
		if st.Waiting.Message != "" {
			r += ": " + oneLine(st.Waiting.Message)
		}
		if t := cs.LastTerminationState.Terminated; t != nil {
			r += "; " + terminated("last run", t)
		}
		return r
	case st.Terminated != nil && st.Terminated.ExitCode != 0:
		return terminated("terminated", st.Terminated)
	case st.Running != nil && !cs.Ready:
		return "running, not ready"
	}
	return ""
}

func terminated(what string, t *corev1.ContainerStateTerminated) string {
	s := fmt.Sprintf("%s exited with code %d", what, t.ExitCode)
	if t.Reason != "" {
		s += " (" + t.Reason + ")"
	}
	if t.Message != "" {
		s += ": " + oneLine(t.Message)
	}
	return s
}

// containerImage is the image the pod asks for (the status may not name it before a pull succeeds).
func containerImage(p *corev1.Pod, cs corev1.ContainerStatus) string {
	for _, cs2 := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs2 {
			if c.Name == cs.Name {
				return c.Image
			}
		}
	}
	return cs.Image
}

// podEvents are a pod's warning events (failing probes, failed mounts, scheduling), the same
// reason and message merged, the most recent first.
func (w *waiter) podEvents(ctx context.Context, p *corev1.Pod) []string {
	sel := fields.Set{"involvedObject.kind": "Pod", "involvedObject.name": p.Name, "involvedObject.uid": string(p.UID)}
	evs, err := w.kube.CoreV1().Events(p.Namespace).List(ctx, metav1.ListOptions{FieldSelector: sel.AsSelector().String()})
	if err != nil {
		return []string{fmt.Sprintf("pod %s: cannot list its events: %v", p.Name, err)}
	}
	type merged struct {
		reason, message string
		count           int32
		last            time.Time
	}
	byKey := map[string]*merged{}
	for _, e := range evs.Items {
		if e.Type != corev1.EventTypeWarning || e.InvolvedObject.Name != p.Name {
			continue
		}
		k := e.Reason + "\x00" + e.Message
		m := byKey[k]
		if m == nil {
			m = &merged{reason: e.Reason, message: oneLine(e.Message)}
			byKey[k] = m
		}
		m.count += eventCount(e)
		if t := eventTime(e); t.After(m.last) {
			m.last = t
		}
	}
	list := make([]*merged, 0, len(byKey))
	for _, m := range byKey {
		list = append(list, m)
	}
	sort.Slice(list, func(i, j int) bool {
		if !list[i].last.Equal(list[j].last) {
			return list[i].last.After(list[j].last)
		}
		return list[i].reason < list[j].reason
	})
	var out []string
	for i, m := range list {
		if i == maxPodEvents {
			break
		}
		s := fmt.Sprintf("pod %s: %s: %s", p.Name, m.reason, m.message)
		if m.count > 1 {
			s += fmt.Sprintf(" (%d times)", m.count)
		}
		out = append(out, s)
	}
	return out
}

func eventCount(e corev1.Event) int32 {
	switch {
	case e.Series != nil && e.Series.Count > 0:
		return e.Series.Count
	case e.Count > 0:
		return e.Count
	}
	return 1
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

// oneLine keeps a message on one line, and bounded: probe output can be a whole HTML page.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxReasonLength {
		s = s[:maxReasonLength] + "..."
	}
	return s
}
