package integration

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kilnbuild/kiln/internal/testenv"
	"github.com/kilnbuild/kiln/internal/testenv/kube"
)

// executorCluster is what the executor-pod tests share: one cluster, the executor image
// pushed once, and a registry that asks for credentials, which the pods find only in the
// config.json that the Secret regcred mounts at /kaniko/.docker.
type executorCluster struct {
	client   kubernetes.Interface
	ns       string
	images   *testenv.Registry // the executor image, pulled by the node (plain HTTP, no auth)
	reg      *testenv.Registry // base images and every build's pushes (basic auth)
	executor string            // the executor image's reference
	busybox  string            // a busybox base in reg
}

// regcredSecret is the dockerconfigjson Secret every build pod mounts at /kaniko/.docker.
const regcredSecret = "regcred"

// startExecutorCluster starts a cluster, pushes the executor image and busybox, and makes a
// namespace holding regcred, a real kubernetes.io/dockerconfigjson Secret with reg's
// credentials, as `kubectl create secret docker-registry` makes it.
func startExecutorCluster(t *testing.T) *executorCluster {
	t.Helper()
	requireRoot(t)
	ip, err := kube.HostIP()
	if err != nil {
		t.Skipf("pods need an address of this machine to reach the registries: %v", err)
	}
	clock := newPhaseClock(t)
	e := &executorCluster{
		images: testenv.StartRegistry(t, testenv.RegistryOptions{Host: ip.String()}),
		reg:    testenv.StartRegistry(t, testenv.RegistryOptions{Host: ip.String(), Auth: true}),
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("registry %s, errors in %s:\n%s", e.reg.Addr, e.reg.LogFile, logTail(registryErrors(e.reg), 40))
		}
	})
	e.executor = testenv.PushExecutorImage(t, e.images, "kiln/executor:debug", testenv.BuildExecutor(t), testenv.BuildPipeline(t))
	e.busybox = testenv.PushBusybox(t, e.reg, "base/busybox:1")
	clock.phase("executor image and busybox pushed")
	c := kube.StartCluster(t, kube.ClusterOptions{InsecureRegistries: []string{e.images.Addr}})
	e.client, e.ns = c.Client(t), c.Namespace(t)
	clock.phase("cluster ready, namespace " + e.ns)
	cfg, err := os.ReadFile(e.reg.DockerConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: regcredSecret},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: cfg},
	}
	if _, err := e.client.CoreV1().Secrets(e.ns).Create(context.Background(), secret, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Secret %s/%s: %v", e.ns, regcredSecret, err)
	}
	return e
}

// jobs returns the pipeline test's Job helpers (wait, logs, dump) for e's namespace.
func (e *executorCluster) jobs(t *testing.T) *clusterPipeline {
	return &clusterPipeline{t: t, client: e.client, ns: e.ns, reg: e.reg}
}

// buildJob describes one executor pod.
type buildJob struct {
	name     string
	context  string   // host directory mounted at /workspace (read-only), as a context volume
	args     []string // executor flags after --context and --dockerfile
	memory   string   // memory limit ("256Mi"), none when empty
	cacheDir string   // host directory mounted read-write at /cache, none when empty
}

// memoryProbe wraps the executor in the image's busybox shell: it prints the executor
// process's credentials as the kernel reports them (capabilities, no_new_privs, seccomp),
// samples its peak RSS (VmHWM) and the container cgroup's anonymous memory while it runs,
// and prints both with the cgroup's peak usage and limit once it ends (cgroup v1: total_rss,
// memory.max_usage_in_bytes, memory.limit_in_bytes; v2: anon, memory.peak, memory.max). The pod-mode build replaces the container's / with the image it builds; /busybox
// survives through --ignore-path.
const memoryProbe = `/kaniko/executor "$@" &
pid=$!
/busybox/sleep 0.1
/busybox/grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/$pid/status | /busybox/sed 's/^/kiln-status: /'
if [ -f /sys/fs/cgroup/memory.max ]; then
  v=2; cg=/sys/fs/cgroup; anon=anon; peak=memory.peak; limit=memory.max
else
  v=1; cg=/sys/fs/cgroup/memory; anon=total_rss; peak=memory.max_usage_in_bytes; limit=memory.limit_in_bytes
fi
hwm=0; rss=0
while s=$(/busybox/grep '^VmHWM:' /proc/$pid/status 2>/dev/null); do
  set -- $s; [ "$2" -gt "$hwm" ] && hwm=$2
  set -- $(/busybox/grep "^$anon " $cg/memory.stat); [ "$2" -gt "$rss" ] && rss=$2
  /busybox/sleep 0.2
done
wait $pid; rc=$?
echo "kiln-memory: cgroup=$v vmhwm_kib=$hwm anon_peak=$rss usage_peak=$(/busybox/cat $cg/$peak) limit=$(/busybox/cat $cg/$limit)"
exit $rc
`

// job renders b as a batch/v1 Job of one executor pod with a pod's defaults: no added
// capabilities, the RuntimeDefault seccomp profile, allowPrivilegeEscalation false, the
// context as a volume at /workspace and config.json from regcred at /kaniko/.docker.
func (e *executorCluster) job(b buildJob) *batchv1.Job {
	args := append([]string{"--context=dir:///workspace", "--dockerfile=/workspace/Dockerfile",
		"--ignore-path=/busybox", "--log-format=text"}, b.args...)
	mounts := []corev1.VolumeMount{
		{Name: "context", MountPath: "/workspace", ReadOnly: true},
		{Name: "docker-config", MountPath: "/kaniko/.docker", ReadOnly: true},
	}
	volumes := []corev1.Volume{
		{Name: "context", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
			Path: b.context, Type: new(corev1.HostPathDirectory)}}},
		{Name: "docker-config", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: regcredSecret,
			Items:      []corev1.KeyToPath{{Key: corev1.DockerConfigJsonKey, Path: "config.json"}},
		}}},
	}
	if b.cacheDir != "" {
		mounts = append(mounts, corev1.VolumeMount{Name: "cache", MountPath: "/cache"})
		volumes = append(volumes, corev1.Volume{Name: "cache", VolumeSource: corev1.VolumeSource{
			HostPath: &corev1.HostPathVolumeSource{Path: b.cacheDir, Type: new(corev1.HostPathDirectory)}}})
	}
	var res corev1.ResourceRequirements
	if b.memory != "" {
		res.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(b.memory)}
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: b.name},
		Spec: batchv1.JobSpec{
			BackoffLimit: new(int32(0)),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{
					Name:         "build",
					Image:        e.executor,
					Command:      append([]string{"/busybox/sh", "-c", memoryProbe, "sh"}, args...),
					VolumeMounts: mounts,
					Resources:    res,
					SecurityContext: &corev1.SecurityContext{
						AllowPrivilegeEscalation: new(false),
						SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
				}},
				Volumes: volumes,
			}},
		},
	}
}

// runJobs submits the jobs at once and waits for each to succeed (failing the test with its
// log otherwise); it returns their results in order.
func (e *executorCluster) runJobs(t *testing.T, jobs ...buildJob) []jobResult {
	t.Helper()
	ctx := context.Background()
	for _, b := range jobs {
		if _, err := e.client.BatchV1().Jobs(e.ns).Create(ctx, e.job(b), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create Job %s/%s: %v", e.ns, b.name, err)
		}
	}
	p := e.jobs(t)
	var out []jobResult
	for _, b := range jobs {
		pod := p.waitJob(b.name)
		out = append(out, jobResult{name: b.name, pod: pod, logs: p.containerLogs(pod)})
	}
	return out
}

// podStatus is what memoryProbe printed about the executor process and its container.
type podStatus struct {
	status map[string]string // /proc/PID/status field -> value (CapEff, NoNewPrivs, ...)
	memory map[string]int64  // cgroup (1 or 2), vmhwm_kib, anon_peak, usage_peak, limit
}

// parsePodStatus reads memoryProbe's lines from a build container's log.
func parsePodStatus(t *testing.T, log string) podStatus {
	t.Helper()
	s := podStatus{status: map[string]string{}, memory: map[string]int64{}}
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "kiln-status: "); ok {
			k, v, _ := strings.Cut(rest, ":")
			s.status[k] = strings.TrimSpace(v)
		}
		if rest, ok := strings.CutPrefix(line, "kiln-memory: "); ok {
			for _, f := range strings.Fields(rest) {
				k, v, _ := strings.Cut(f, "=")
				if v == "" || v == "max" { // no limit (v2), no memory.peak (Linux < 5.19)
					s.memory[k] = -1
					continue
				}
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatalf("memory probe: %q in %q: %v", f, line, err)
				}
				s.memory[k] = n
			}
		}
	}
	if len(s.status) == 0 || len(s.memory) == 0 {
		t.Fatalf("the build container's log lacks the probe's kiln-status/kiln-memory lines:\n%s", log)
	}
	return s
}

// runTime is how long the build container of a finished pod ran.
func runTime(pod *corev1.Pod) time.Duration {
	for _, s := range pod.Status.ContainerStatuses {
		if term := s.State.Terminated; term != nil {
			return term.FinishedAt.Sub(term.StartedAt.Time)
		}
	}
	return 0
}

// logTail is the last n lines of a log, for messages.
func logTail(log string, n int) string {
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
