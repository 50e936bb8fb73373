package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/kilnbuild/kiln/internal/testenv"
)

// How long the cluster pipeline may take, at most (the test's -timeout may cut it shorter).
const (
	// pipelineJobTimeout covers pulling the images (the Go image is ~100 MB), go vet, test and
	// build of the app on two loaded cores, the image build and push, and the rollout.
	pipelineJobTimeout = 12 * time.Minute
	// clusterServiceTimeout covers kube-proxy programming a new Service or endpoint.
	clusterServiceTimeout = time.Minute
)

// clusterPipeline renders examples/hello's pipeline with bin/pipeline and runs its Job in a
// cluster namespace.
type clusterPipeline struct {
	t      *testing.T
	client kubernetes.Interface
	ns     string
	bin    string            // the pipeline binary that renders
	reg    *testenv.Registry // where the app's images go
	file   string            // the pipeline file in the work copy of the repository
	vars   []string          // NAME=VALUE for --var
	// account is the ServiceAccount of the rendered rbac.yaml, set by applyRBAC.
	account string
}

// jobResult is a finished pipeline Job: its pod and every container's log.
type jobResult struct {
	name string
	pod  *corev1.Pod
	logs map[string]string // container name -> log
}

// run renders build n's job.yaml and rbac.yaml, applies the RBAC, makes sure the registry
// Secret exists, submits the Job as rendered and waits for it to succeed.
func (p *clusterPipeline) run(n int) jobResult {
	p.t.Helper()
	dir := p.render(n)
	p.applyRBAC(filepath.Join(dir, "rbac.yaml"))
	job := p.decodeJob(filepath.Join(dir, "job.yaml"))
	if sa := job.Spec.Template.Spec.ServiceAccountName; sa != p.account {
		p.t.Fatalf("the rendered Job runs as service account %q, want %q of rbac.yaml", sa, p.account)
	}
	p.ensureRegcred(job)
	ctx := context.Background()
	if _, err := p.client.BatchV1().Jobs(p.ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		p.t.Fatalf("create the rendered Job %s/%s: %v", p.ns, job.Name, err)
	}
	pod := p.waitJob(job.Name)
	res := jobResult{name: job.Name, pod: pod, logs: p.containerLogs(pod)}
	for _, c := range podContainers(pod) {
		p.t.Logf("job %s: log of container %s:\n%s", job.Name, c, strings.TrimRight(res.logs[c], "\n"))
	}
	p.t.Logf("job %s: %s", job.Name, containerTimings(pod))
	return res
}

// render runs `pipeline render --for job` for build n into a fresh directory.
func (p *clusterPipeline) render(n int) string {
	p.t.Helper()
	dir := p.t.TempDir()
	args := []string{"render", "-f", p.file, "-o", dir, "--for", "job",
		"--path-in-repo", "kiln-pipeline.yaml", "--build-number", strconv.Itoa(n)}
	for _, v := range p.vars {
		args = append(args, "--var", v)
	}
	out, err := exec.Command(p.bin, args...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("%s %s: %v\n%s", p.bin, strings.Join(args, " "), err, out)
	}
	return dir
}

// decodeJob reads the rendered job.yaml with client-go's scheme.
func (p *clusterPipeline) decodeJob(path string) *batchv1.Job {
	p.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		p.t.Fatal(err)
	}
	obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode(b, nil, nil)
	if err != nil {
		p.t.Fatalf("decode %s: %v", path, err)
	}
	job, ok := obj.(*batchv1.Job)
	if !ok {
		p.t.Fatalf("%s holds a %s, want a batch/v1 Job", path, gvk)
	}
	if job.Namespace != p.ns {
		p.t.Fatalf("%s: Job namespace %q, want %q (the NAMESPACE variable)", path, job.Namespace, p.ns)
	}
	return job
}

// applyRBAC applies every object of the rendered rbac.yaml with server-side apply, as the
// cluster's admin would (kubectl apply --server-side -f rbac.yaml).
func (p *clusterPipeline) applyRBAC(path string) {
	p.t.Helper()
	ctx := context.Background()
	for i, doc := range renderedDocuments(p.t, path) {
		obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			p.t.Fatalf("%s, document %d: %v", path, i+1, err)
		}
		body, err := yaml.YAMLToJSON(doc)
		if err != nil {
			p.t.Fatalf("%s, document %d: %v", path, i+1, err)
		}
		meta := obj.(metav1.Object)
		if meta.GetNamespace() != p.ns {
			p.t.Fatalf("%s: %s %s in namespace %q, want %q", path, gvk.Kind, meta.GetName(), meta.GetNamespace(), p.ns)
		}
		opts := metav1.PatchOptions{FieldManager: "kiln-test-admin", Force: new(true)}
		name, apply := meta.GetName(), types.ApplyPatchType
		switch obj.(type) {
		case *corev1.ServiceAccount:
			p.account = name
			_, err = p.client.CoreV1().ServiceAccounts(p.ns).Patch(ctx, name, apply, body, opts)
		case *rbacv1.Role:
			_, err = p.client.RbacV1().Roles(p.ns).Patch(ctx, name, apply, body, opts)
		case *rbacv1.RoleBinding:
			_, err = p.client.RbacV1().RoleBindings(p.ns).Patch(ctx, name, apply, body, opts)
		default:
			p.t.Fatalf("%s: unexpected %s %s: want only a ServiceAccount, a Role and a RoleBinding", path, gvk.Kind, name)
		}
		if err != nil {
			p.t.Fatalf("server-side apply of %s %s from %s: %v", gvk.Kind, name, path, err)
		}
	}
}

// renderedDocuments splits a multi-document YAML file, dropping empty documents.
func renderedDocuments(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("split %s: %v", path, err)
		}
		if j, err := yaml.YAMLToJSON(doc); err == nil && string(j) != "null" {
			docs = append(docs, doc)
		}
	}
}

// ensureRegcred creates the registry Secret the Job mounts at /kaniko/.docker: a real
// kubernetes.io/dockerconfigjson Secret, as `kubectl create secret docker-registry` makes it.
// The test registry asks for no credentials; the entry is there as a user's would be.
func (p *clusterPipeline) ensureRegcred(job *batchv1.Job) {
	p.t.Helper()
	var name string
	for _, v := range job.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			name = v.Secret.SecretName
		}
	}
	if name != "regcred" {
		p.t.Fatalf("the rendered Job mounts the registry Secret %q, want regcred (the pipeline names none)", name)
	}
	auth := base64.StdEncoding.EncodeToString([]byte("kiln:not-checked"))
	cfg, err := json.Marshal(map[string]any{"auths": map[string]any{
		p.reg.Addr: map[string]string{"username": "kiln", "password": "not-checked", "auth": auth},
	}})
	if err != nil {
		p.t.Fatal(err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: cfg},
	}
	_, err = p.client.CoreV1().Secrets(p.ns).Create(context.Background(), secret, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		p.t.Fatalf("create Secret %s/%s: %v", p.ns, name, err)
	}
}

// waitJob waits for the Job to succeed and returns its pod; a failure or a timeout fails the
// test with every container's log and the namespace's events. Progress is logged as the pod's
// containers move on.
func (p *clusterPipeline) waitJob(name string) *corev1.Pod {
	p.t.Helper()
	ctx := context.Background()
	start := time.Now()
	deadline := p.deadline(pipelineJobTimeout)
	var last string
	for {
		job, err := p.client.BatchV1().Jobs(p.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			p.t.Fatalf("get Job %s: %v", name, err)
		}
		pod := p.jobPod(name)
		if s := podProgress(pod); s != last {
			p.t.Logf("job %s after %s: %s", name, time.Since(start).Round(time.Second), s)
			last = s
		}
		switch {
		case jobCondition(job, batchv1.JobComplete):
			if pod == nil {
				p.t.Fatalf("Job %s completed, but its pod is gone", name)
			}
			return pod
		case jobCondition(job, batchv1.JobFailed):
			p.dump(pod)
			p.t.Fatalf("Job %s failed after %s: %s", name, time.Since(start).Round(time.Second), jobReason(job))
		case time.Now().After(deadline):
			p.dump(pod)
			p.t.Fatalf("Job %s did not finish within %s; last state: %s", name, time.Since(start).Round(time.Second), last)
		}
		time.Sleep(2 * time.Second)
	}
}

// deadline is now+d, or a minute before the test's own deadline when that comes first, so
// that a slow run fails with the logs rather than in a panic without them.
func (p *clusterPipeline) deadline(d time.Duration) time.Time {
	end := time.Now().Add(d)
	if td, ok := p.t.Deadline(); ok && td.Add(-time.Minute).Before(end) {
		end = td.Add(-time.Minute)
	}
	return end
}

// jobPod returns the newest pod of the Job, or nil.
func (p *clusterPipeline) jobPod(job string) *corev1.Pod {
	pods, err := p.client.CoreV1().Pods(p.ns).List(context.Background(),
		metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + job})
	if err != nil {
		p.t.Fatalf("list the pods of Job %s: %v", job, err)
	}
	var newest *corev1.Pod
	for i := range pods.Items {
		if newest == nil || pods.Items[i].CreationTimestamp.After(newest.CreationTimestamp.Time) {
			newest = &pods.Items[i]
		}
	}
	return newest
}

func jobCondition(job *batchv1.Job, c batchv1.JobConditionType) bool {
	for _, cond := range job.Status.Conditions {
		if cond.Type == c && cond.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func jobReason(job *batchv1.Job) string {
	var out []string
	for _, c := range job.Status.Conditions {
		if c.Status == corev1.ConditionTrue {
			out = append(out, fmt.Sprintf("%s: %s %s", c.Type, c.Reason, c.Message))
		}
	}
	return strings.Join(out, "; ")
}

// podContainers names the pod's init containers and containers, in the order they run.
func podContainers(pod *corev1.Pod) []string {
	var names []string
	for _, c := range append(slices.Clone(pod.Spec.InitContainers), pod.Spec.Containers...) {
		names = append(names, c.Name)
	}
	return names
}

// podProgress sums up the pod's phase and where each container is.
func podProgress(pod *corev1.Pod) string {
	if pod == nil {
		return "no pod yet"
	}
	parts := []string{"pod " + pod.Name + " " + string(pod.Status.Phase)}
	for _, s := range append(slices.Clone(pod.Status.InitContainerStatuses), pod.Status.ContainerStatuses...) {
		parts = append(parts, s.Name+" "+containerState(s.State))
	}
	return strings.Join(parts, ", ")
}

func containerState(s corev1.ContainerState) string {
	switch {
	case s.Terminated != nil:
		return fmt.Sprintf("exited %d (%s)", s.Terminated.ExitCode, s.Terminated.Reason)
	case s.Running != nil:
		return "running"
	case s.Waiting != nil:
		if s.Waiting.Message != "" {
			return "waiting: " + s.Waiting.Reason + ": " + s.Waiting.Message
		}
		return "waiting: " + s.Waiting.Reason
	}
	return "unknown"
}

// containerTimings says how long each container of a finished pod ran, and how long the pod
// waited before its first container (scheduling, image pulls).
func containerTimings(pod *corev1.Pod) string {
	parts := []string{}
	var first time.Time
	for _, s := range append(slices.Clone(pod.Status.InitContainerStatuses), pod.Status.ContainerStatuses...) {
		if term := s.State.Terminated; term != nil {
			if first.IsZero() {
				first = term.StartedAt.Time
			}
			parts = append(parts, fmt.Sprintf("%s %s", s.Name, term.FinishedAt.Sub(term.StartedAt.Time)))
		}
	}
	return fmt.Sprintf("pod created to first container started %s; %s",
		first.Sub(pod.CreationTimestamp.Time), strings.Join(parts, ", "))
}

// containerLogs reads every container's log through pods/log.
func (p *clusterPipeline) containerLogs(pod *corev1.Pod) map[string]string {
	logs := map[string]string{}
	for _, c := range podContainers(pod) {
		b, err := p.client.CoreV1().Pods(p.ns).GetLogs(pod.Name, &corev1.PodLogOptions{Container: c}).DoRaw(context.Background())
		if err != nil {
			logs[c] = fmt.Sprintf("(no log: %v)", err)
			continue
		}
		logs[c] = string(b)
	}
	return logs
}

// dump logs what explains a failed pipeline: each container's state and log, the state of
// every pod in the namespace (the app's too), and the namespace's events.
func (p *clusterPipeline) dump(pod *corev1.Pod) {
	p.t.Helper()
	ctx := context.Background()
	if pod != nil {
		logs := p.containerLogs(pod)
		for _, c := range podContainers(pod) {
			p.t.Logf("pod %s, container %s, log:\n%s", pod.Name, c, logs[c])
		}
	}
	if pods, err := p.client.CoreV1().Pods(p.ns).List(ctx, metav1.ListOptions{}); err == nil {
		for i := range pods.Items {
			p.t.Logf("pod state: %s", podProgress(&pods.Items[i]))
		}
	}
	evs, err := p.client.CoreV1().Events(p.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		p.t.Logf("events of namespace %s: %v", p.ns, err)
		return
	}
	slices.SortFunc(evs.Items, func(a, b corev1.Event) int { return eventTime(a).Compare(eventTime(b)) })
	var sb strings.Builder
	for _, e := range evs.Items {
		fmt.Fprintf(&sb, "%s %s/%s %s %s: %s\n", eventTime(e).Format("15:04:05"), e.InvolvedObject.Kind,
			e.InvolvedObject.Name, e.Type, e.Reason, e.Message)
	}
	p.t.Logf("events of namespace %s:\n%s", p.ns, sb.String())
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

// appImage is the reference build n pushes.
func (p *clusterPipeline) appImage(n int) string { return p.reg.Ref(fmt.Sprintf("demo/hello:%d", n)) }

// checkDeployed checks that build n is what runs: the Deployment hello is Available with the
// image of build n, applied by the pipeline (field manager kiln); its one pod is Ready (the
// readiness probe passes), never restarted (the liveness probe passes) and runs exactly the
// image the registry holds; and the Service answers on port 8082 from the host.
func (p *clusterPipeline) checkDeployed(n int) {
	p.t.Helper()
	ctx := context.Background()
	want := p.appImage(n)
	dep, err := p.client.AppsV1().Deployments(p.ns).Get(ctx, "hello", metav1.GetOptions{})
	if err != nil {
		p.t.Fatalf("the pipeline's Deployment hello: %v", err)
	}
	if got := dep.Spec.Template.Spec.Containers[0].Image; got != want {
		p.t.Errorf("Deployment hello runs image %s, want %s", got, want)
	}
	if !clusterDeploymentAvailable(dep) || dep.Status.ReadyReplicas != 1 || dep.Status.UpdatedReplicas != 1 {
		p.t.Errorf("Deployment hello after the Job: %+v; want Available, 1 ready and updated replica", dep.Status)
	}
	if c := dep.Spec.Template.Spec.Containers[0]; c.ReadinessProbe == nil || c.LivenessProbe == nil {
		p.t.Errorf("Deployment hello has no readiness or liveness probe: the check below would prove nothing")
	}
	if !appliedBy(dep.ManagedFields, "kiln") {
		p.t.Errorf("Deployment hello was not applied by field manager kiln: %v", managers(dep.ManagedFields))
	}
	digest, _ := testenv.SkopeoInspect(p.t, p.reg, want)["Digest"].(string)
	pod := p.waitAppPod(want)
	st := pod.Status.ContainerStatuses[0]
	if !strings.HasSuffix(st.ImageID, "@"+digest) || !st.Ready || st.RestartCount != 0 {
		p.t.Errorf("pod %s: image ID %s, ready %v, %d restarts; want the pushed %s@%s, ready, no restart",
			pod.Name, st.ImageID, st.Ready, st.RestartCount, want, digest)
	}
	p.checkService()
}

// waitAppPod waits until the app's only live pod is Ready and runs image, and returns it.
func (p *clusterPipeline) waitAppPod(image string) *corev1.Pod {
	p.t.Helper()
	var ready *corev1.Pod
	p.waitFor(clusterServiceTimeout, "the app's one pod Ready with "+image, func() (bool, string) {
		pods, err := p.client.CoreV1().Pods(p.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=hello"})
		if err != nil {
			return false, err.Error()
		}
		var live []string
		ready = nil
		for i := range pods.Items {
			pod := &pods.Items[i]
			if pod.DeletionTimestamp != nil {
				continue
			}
			live = append(live, podProgress(pod))
			if pod.Spec.Containers[0].Image == image && clusterPodReady(pod) {
				ready = pod
			}
		}
		return len(live) == 1 && ready != nil, strings.Join(live, "; ")
	})
	return ready
}

// checkService asks the Service hello, at its ClusterIP and port 8082, from the host.
func (p *clusterPipeline) checkService() {
	p.t.Helper()
	svc, err := p.client.CoreV1().Services(p.ns).Get(context.Background(), "hello", metav1.GetOptions{})
	if err != nil {
		p.t.Fatalf("the pipeline's Service hello: %v", err)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 8082 || svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		p.t.Fatalf("Service hello: cluster IP %q, ports %+v; want one port 8082 on a cluster IP", svc.Spec.ClusterIP, svc.Spec.Ports)
	}
	url := fmt.Sprintf("http://%s:8082/", svc.Spec.ClusterIP)
	hc := &http.Client{Timeout: 3 * time.Second}
	const want = "Hello, World! v1.0"
	p.waitFor(clusterServiceTimeout, "Service hello ("+url+") to answer "+want, func() (bool, string) {
		resp, err := hc.Get(url)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && string(body) == want, fmt.Sprintf("%s %q", resp.Status, body)
	})
	p.t.Logf("GET %s -> %s", url, want)
}

// checkRolledOver checks the rollout from build old to build new: the Deployment is at its
// second revision, the ReplicaSet of the new image has the ready pod, the old one none.
func (p *clusterPipeline) checkRolledOver(old, new int) {
	p.t.Helper()
	ctx := context.Background()
	dep, err := p.client.AppsV1().Deployments(p.ns).Get(ctx, "hello", metav1.GetOptions{})
	if err != nil {
		p.t.Fatal(err)
	}
	if rev := dep.Annotations["deployment.kubernetes.io/revision"]; rev != "2" {
		p.t.Errorf("Deployment hello at revision %q, want 2 (one rollout per build)", rev)
	}
	rss, err := p.client.AppsV1().ReplicaSets(p.ns).List(ctx, metav1.ListOptions{LabelSelector: "app=hello"})
	if err != nil {
		p.t.Fatal(err)
	}
	byImage := map[string]*appsv1.ReplicaSet{}
	for i := range rss.Items {
		byImage[rss.Items[i].Spec.Template.Spec.Containers[0].Image] = &rss.Items[i]
	}
	oldRS, newRS := byImage[p.appImage(old)], byImage[p.appImage(new)]
	switch {
	case len(rss.Items) != 2 || oldRS == nil || newRS == nil:
		p.t.Errorf("ReplicaSets of hello: %d, by image %v; want one for build %d and one for build %d", len(rss.Items), sortedMapKeys(byImage), old, new)
	case *newRS.Spec.Replicas != 1 || newRS.Status.ReadyReplicas != 1 || *oldRS.Spec.Replicas != 0 || oldRS.Status.Replicas != 0:
		p.t.Errorf("ReplicaSet %s (build %d): %d wanted, %d ready; %s (build %d): %d wanted, %d running; want 1 ready and 0",
			newRS.Name, new, *newRS.Spec.Replicas, newRS.Status.ReadyReplicas, oldRS.Name, old, *oldRS.Spec.Replicas, oldRS.Status.Replicas)
	}
}

// waitFor polls cond every half second until it holds; after timeout it fails the test with
// what, cond's last word and the namespace's events.
func (p *clusterPipeline) waitFor(timeout time.Duration, what string, cond func() (bool, string)) {
	p.t.Helper()
	deadline := p.deadline(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			p.dump(nil)
			p.t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, state)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func clusterDeploymentAvailable(d *appsv1.Deployment) bool {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func clusterPodReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// appliedBy reports whether manager owns fields through server-side apply.
func appliedBy(fields []metav1.ManagedFieldsEntry, manager string) bool {
	return slices.ContainsFunc(fields, func(f metav1.ManagedFieldsEntry) bool {
		return f.Manager == manager && f.Operation == metav1.ManagedFieldsOperationApply
	})
}

func managers(fields []metav1.ManagedFieldsEntry) []string {
	var out []string
	for _, f := range fields {
		out = append(out, f.Manager+"/"+string(f.Operation))
	}
	return out
}

func sortedMapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
