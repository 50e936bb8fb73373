package kube

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/internal/testenv"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// hostState is what a cluster may touch on the host, to compare before and after.
type hostState struct {
	nftTables   []string
	sysctls     sysctls
	mountPoints map[string]bool
	bridge      bool
}

func readHostState(t *testing.T) hostState {
	t.Helper()
	tables, err := nftTables()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(tables)
	s := hostState{nftTables: tables, sysctls: snapshotSysctls(), mountPoints: map[string]bool{}}
	for _, p := range fixedPaths {
		_, err := os.Stat(p)
		s.mountPoints[p] = err == nil
	}
	_, err = os.Stat("/sys/class/net/" + cniBridge)
	s.bridge = err == nil
	return s
}

// TestCluster runs a real one-node cluster: pods pull from a registry bound
// to the node address, write logs read through the API, reach that registry;
// a Deployment with a readiness probe becomes Available; its ClusterIP
// Service answers from the host through kube-proxy. Then the cluster stops and
// the host is as before.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("kube: a one-node cluster takes about a minute; skipped with -short")
	}
	ip, err := HostIP()
	if err != nil {
		t.Skipf("kube: no address pods can reach: %v", err)
	}
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Host: ip.String()})
	busybox := testenv.PushBusybox(t, reg, "busybox:1")
	reapBefore(t)
	before := readHostState(t)

	l := &life{dir: t.TempDir(), logf: t.Logf, errorf: t.Errorf}
	t.Cleanup(l.stop) // if the test stops early; a no-op after the stop below
	start := time.Now()
	c, err := startCluster(l, ClusterOptions{InsecureRegistries: []string{reg.Addr}})
	if err != nil {
		l.stop()
		fatalOrSkip(t, err)
	}
	t.Logf("kube: start to node Ready: %s; memory of the idle cluster: %d MiB", time.Since(start).Round(time.Millisecond), c.RSS()>>20)
	client := c.Client(t)
	t.Run("workloads", func(t *testing.T) {
		ns := c.Namespace(t) // deleted at the end of this subtest, before the cluster stops
		t.Run("pod", func(t *testing.T) { testPodLogs(t, client, ns, busybox, reg.Addr) })
		t.Run("deployment-service", func(t *testing.T) { testDeploymentService(t, client, ns, busybox) })
		t.Run("in-cluster-client", func(t *testing.T) { testInClusterClient(t, client, reg, ns) })
	})
	t.Logf("kube: memory of the cluster with its pods: %d MiB", c.RSS()>>20)

	mntID, cg, sock := c.ns.mntID, c.cg, c.rt.sock
	// Keep the node's mount namespace alive through the checks: once freed,
	// its id is handed to the next namespace made on the machine (another
	// test's container), whose processes would look like the node's.
	pin, err := os.Open(fmt.Sprintf("/proc/%d/ns/mnt", c.ns.holder.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	defer pin.Close()
	stopStart := time.Now()
	l.stop()
	t.Logf("kube: cluster stopped in %s", time.Since(stopStart).Round(time.Millisecond))
	checkNothingLeft(t, l, before, mntID, cg, sock)
}

// TestSharedCluster runs after TestCluster (Go runs tests in file order):
// from its start on, the binary's cluster is the shared one.
func TestSharedCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("kube: a one-node cluster takes about a minute; skipped with -short")
	}
	var clusters []*Cluster
	var names []string
	for _, name := range []string{"one", "two"} {
		t.Run(name, func(t *testing.T) {
			c := SharedCluster(t)
			ns := c.Namespace(t) // waits for the default service account
			clusters, names = append(clusters, c), append(names, ns)
		})
	}
	if len(clusters) != 2 || clusters[0] != clusters[1] || names[0] == names[1] {
		t.Fatalf("SharedCluster gave %v, namespaces %v: want one cluster, two namespaces", clusters, names)
	}
}

// testPodLogs runs a busybox pod that writes its name and what the registry
// on the node address answers, and reads that through pods/log.
func testPodLogs(t *testing.T, client kubernetes.Interface, ns, image, registry string) {
	ctx := context.Background()
	// The pod reaches the registry on the node address.
	script := fmt.Sprintf("echo hello from $(hostname); wget -q -O - http://%s/v2/ && echo; echo checks done; exec sleep 3600", registry)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "writer"},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr(int64(0)),
			Containers:                    []corev1.Container{{Name: "main", Image: image, Command: []string{"sh", "-c", script}}},
		},
	}
	created := time.Now()
	if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "pod writer Ready", func() (bool, string) {
		p, err := client.CoreV1().Pods(ns).Get(ctx, "writer", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return podReady(p), fmt.Sprintf("phase %s, %v", p.Status.Phase, p.Status.ContainerStatuses)
	})
	t.Logf("kube: pod Ready %s after create (image pulled from %s)", time.Since(created).Round(time.Millisecond), registry)
	var logs string
	waitFor(t, time.Minute, "the pod's log", func() (bool, string) {
		b, err := client.CoreV1().Pods(ns).GetLogs("writer", &corev1.PodLogOptions{}).DoRaw(ctx)
		logs = string(b)
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(logs, "checks done"), logs
	})
	if !strings.Contains(logs, "hello from writer\n") || !strings.Contains(logs, "{}\n") {
		t.Errorf("log of pod writer = %q, want its hostname and the registry's {} answer", logs)
	}

}

// testDeploymentService makes a Deployment of busybox httpd with a readiness
// probe and a ClusterIP Service in front, and fetches the page from the host.
func testDeploymentService(t *testing.T, client kubernetes.Interface, ns, image string) {
	ctx := context.Background()
	labels := map[string]string{"app": "web"}
	script := "mkdir -p /www && echo served by $(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www"
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr(int64(0)),
					Containers: []corev1.Container{{
						Name: "httpd", Image: image, Command: []string{"sh", "-c", script},
						Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/index.html", Port: intstr.FromInt32(8080)}},
							PeriodSeconds: 1,
						},
					}},
				},
			},
		},
	}
	created := time.Now()
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
	svc, err := client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "deployment web Available", func() (bool, string) {
		d, err := client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue && d.Status.ReadyReplicas == 1 {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", d.Status)
	})
	t.Logf("kube: deployment Available %s after create", time.Since(created).Round(time.Millisecond))
	url := "http://" + svc.Spec.ClusterIP + "/index.html"
	hc := &http.Client{Timeout: 2 * time.Second}
	waitFor(t, time.Minute, "Service "+url+" from the host", func() (bool, string) {
		resp, err := hc.Get(url)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && strings.HasPrefix(string(body), "served by web-"), resp.Status + " " + string(body)
	})
}

// whoamiSource asks the API server, through the kubernetes Service, who the
// pod's service-account token is, verifying the server with the projected CA:
// what an in-cluster client (the deploy stage in a pod) does.
const whoamiSource = `package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
)

func main() {
	const sa = "/var/run/secrets/kubernetes.io/serviceaccount/"
	token, err := os.ReadFile(sa + "token")
	if err != nil {
		panic(err)
	}
	ca, err := os.ReadFile(sa + "ca.crt")
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		panic("no certificate in ca.crt")
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	host := net.JoinHostPort(os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT"))
	req, err := http.NewRequest("POST", "https://"+host+"/apis/authentication.k8s.io/v1/selfsubjectreviews",
		strings.NewReader(` + "`" + `{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}` + "`" + `))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Authorization", "Bearer "+string(token))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("%s %s\n", resp.Status, body)
	if resp.StatusCode != http.StatusCreated {
		os.Exit(1)
	}
}
`

// testInClusterClient runs a Go client in a pod that authenticates to the API
// server with its service-account token over the kubernetes Service.
func testInClusterClient(t *testing.T, client kubernetes.Interface, reg *testenv.Registry, ns string) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := buildStaticGo(dir, "whoami", whoamiSource); err != nil {
		fatalOrSkip(t, err)
	}
	if err := os.Remove(filepath.Join(dir, "whoami.go")); err != nil {
		t.Fatal(err)
	}
	image := testenv.PushImageFromDir(t, reg, "whoami:1", dir, v1.Config{Entrypoint: []string{"/whoami"}})
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "whoami"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "main", Image: image}},
		},
	}
	if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var phase corev1.PodPhase
	waitFor(t, 2*time.Minute, "pod whoami to end", func() (bool, string) {
		p, err := client.CoreV1().Pods(ns).Get(ctx, "whoami", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		phase = p.Status.Phase
		return phase == corev1.PodSucceeded || phase == corev1.PodFailed, fmt.Sprintf("phase %s, %v", phase, p.Status.ContainerStatuses)
	})
	logs, err := client.CoreV1().Pods(ns).GetLogs("whoami", &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	user := `"username":"system:serviceaccount:` + ns + `:default"`
	if phase != corev1.PodSucceeded || !strings.Contains(string(logs), user) {
		t.Errorf("pod whoami %s with log %q; want Succeeded, the review naming %s", phase, logs, user)
	}
}

// checkNothingLeft asserts that the stopped cluster left no process, cgroup,
// mount, bridge, nftables table or changed setting behind.
func checkNothingLeft(t *testing.T, l *life, before hostState, mntID string, cg *cgroupRoot, sock string) {
	t.Helper()
	for _, p := range l.procs {
		if !p.exited() {
			t.Errorf("%s (pid %d) still running", p.name, p.cmd.Process.Pid)
		}
	}
	// The node's processes are gone as killNode defines it: none live in its
	// mount namespace (pinned by the caller, so the id is still the node's)
	// or below it; zombies have exited and wait only for pid 1 to reap them.
	for _, pid := range nodeProcesses(mntID, nil) {
		t.Errorf("pid %d still in the node's mount namespace", pid)
	}
	for pid := range processTable() {
		if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(cmdline), sock) {
			t.Errorf("pid %d still names the node's containerd socket: %q", pid, cmdline)
		}
	}
	for _, d := range cg.dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("cgroup %s still exists (%v)", d, err)
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), l.dir) {
		t.Errorf("mounts under %s remain", l.dir)
	}
	after := readHostState(t)
	if !slices.Equal(before.nftTables, after.nftTables) {
		t.Errorf("nftables tables before %v, after %v", before.nftTables, after.nftTables)
	}
	for k, v := range before.sysctls {
		if after.sysctls[k] != v {
			t.Errorf("/proc/sys/%s was %s, is %s", k, v, after.sysctls[k])
		}
	}
	for p, existed := range before.mountPoints {
		if after.mountPoints[p] != existed {
			t.Errorf("%s existed %v before, %v after", p, existed, after.mountPoints[p])
		}
	}
	if after.bridge {
		t.Errorf("bridge %s remains", cniBridge)
	}
}

// reapBefore cleans up after a killed test's cluster now, so that the host
// state read before this test's cluster is the clean one.
func reapBefore(t *testing.T) {
	unlock, err := lockFile(clusterLock, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if err := reapKilledCluster(t.Logf); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds, failing with its last state after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	var state string
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var ok bool
		if ok, state = cond(); ok {
			return
		}
	}
	t.Fatalf("%s: not within %s; last: %s", what, timeout, state)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }
