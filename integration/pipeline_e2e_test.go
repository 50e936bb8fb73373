package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/testenv"
	"github.com/kilnbuild/kiln/internal/testenv/kube"
	"github.com/kilnbuild/kiln/pipeline/render"
	"github.com/kilnbuild/kiln/pipeline/spec"
	"github.com/kilnbuild/kiln/sandbox"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// TestPipelineEndToEnd runs bin/pipeline on a copy of examples/hello as a CI system would:
// build 1 compiles and tests the app in a Go toolchain image (built here by the executor as a
// build pod), builds and pushes hello:1 with the layer cache and deploys it to a real API
// server; build 2 takes every cacheable layer from the cache and rolls the Deployment to
// hello:2, applied with the pipeline's least-privilege service account; applying build 2
// again changes nothing. Then the pushed image runs in Kiln's sandbox and answers over HTTP.
func TestPipelineEndToEnd(t *testing.T) {
	requireRoot(t)
	if err := sandbox.Supported(); err != nil {
		t.Skipf("the build stage and the app's run need Kiln's sandbox, which this machine cannot run: %v", err)
	}
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "demo/busybox:latest")
	goImage := goStageImage(t, reg, base)
	api := kube.Shared(t)
	ns := api.Namespace(t)
	kc := api.Client(t)
	app := copyHello(t)
	c := newCLI(t, app)
	vars := []string{"--var", "REGISTRY=" + reg.Ref("demo"), "--var", "GO_IMAGE=" + goImage,
		"--var", "BASE_IMAGE=" + base, "--var", "NAMESPACE=" + ns}
	run := func(build string, more ...string) cliResult {
		t.Helper()
		args := append([]string{"run", "-f", "kiln-pipeline.yaml", "--build-number", build, "--wait=false"}, vars...)
		return c.want(t, 0, append(args, more...)...)
	}

	b1 := run("1", "--kubeconfig", api.AdminKubeconfig)
	wantAll(t, "build 1's command output", b1.stdout, "ok  \texample.com/hello")
	wantAll(t, "build 1's log", b1.stderr,
		"==> build stage", "pulling the stage image "+goImage, "the command succeeded", "<== build stage done in ",
		"==> image stage", "pushed "+reg.Ref("demo/hello:1"), "<== image stage done in ",
		"==> deploy stage", "deployment.apps/hello created", "service/hello created", "<== deploy stage done in ",
		"pipeline hello build 1 succeeded")
	if fi, err := os.Stat(filepath.Join(app, "out/hello")); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("the build stage left no executable out/hello in the workspace: %v", err)
	}
	cacheable := cacheSteps(b1.stderr, "miss")
	if len(cacheable) < 3 {
		t.Errorf("build 1 logged %d cache misses (%v), want one per RUN, COPY and WORKDIR step:\n%s", len(cacheable), cacheable, b1.stderr)
	}
	checkHelloImage(t, reg, reg.Ref("demo/hello:1"))
	checkHelloObjects(t, kc, ns, reg.Ref("demo/hello:1"))

	// Build 2: the compiled app is already in out/ (one compile per test); the pipeline's own
	// account applies it.
	saKubeconfig := pipelineAccount(t, api, filepath.Join(app, "kiln-pipeline.yaml"), ns)
	b2 := run("2", "--stage", "image,deploy", "--kubeconfig", saKubeconfig)
	wantNone(t, "build 2's log", b2.stderr, "==> build stage", "cache miss")
	var hits []string
	for _, step := range cacheable {
		hits = append(hits, step+" cache hit for key")
	}
	wantAll(t, "build 2's log", b2.stderr, hits...)
	wantAll(t, "build 2's log", b2.stderr,
		fmt.Sprintf("layer cache: %d hits, 0 misses", len(cacheable)),
		"as system:serviceaccount:"+ns+":hello-pipeline", "pushed "+reg.Ref("demo/hello:2"),
		"deployment.apps/hello configured", "service/hello unchanged")
	checkHelloObjects(t, kc, ns, reg.Ref("demo/hello:2"))
	checkAccountLimits(t, saKubeconfig, ns)

	// From the workspace's parent: manifests are relative to the pipeline file, not the cwd.
	b3 := newCLI(t, filepath.Dir(app)).want(t, 0, append([]string{"run", "-f", "hello/kiln-pipeline.yaml",
		"--build-number", "2", "--stage", "deploy", "--wait=false", "--kubeconfig", api.AdminKubeconfig}, vars...)...)
	wantAll(t, "build 2's second deploy", b3.stderr, "deployment.apps/hello unchanged", "service/hello unchanged",
		"2 objects applied (0 created, 0 configured, 2 unchanged)")
	wantNone(t, "build 2's second deploy", b3.stderr, "==> image stage")

	if got := runHelloImage(t, reg, reg.Ref("demo/hello:2")); got != "Hello, World! v1.0" {
		t.Errorf("GET / = %q, want %q", got, "Hello, World! v1.0")
	}
}

// TestPipelineRolloutWait follows a Deployment's rollout through the CLI. No controllers run
// with an API server alone, so the test moves the Deployment's status as the controller would:
// then `pipeline run` waits (deploy.wait, the default) and succeeds; left alone with a short
// deploy.timeout, it fails with exit code 5 and the reasons; stopped by SIGTERM while waiting,
// it says so and exits 1.
func TestPipelineRolloutWait(t *testing.T) {
	api := kube.Shared(t)
	kc := api.Client(t)
	app := copyHello(t)
	c := newCLI(t, app)
	args := func(t *testing.T, file, ns string) []string {
		return []string{"run", "-f", file, "--stage", "deploy", "--build-number", "7",
			"--var", "REGISTRY=registry.example/demo", "--var", "NAMESPACE=" + ns,
			"--kubeconfig", pipelineAccount(t, api, filepath.Join(app, file), ns)}
	}

	t.Run("completes", func(t *testing.T) {
		ns := api.Namespace(t)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := c.command(ctx, args(t, "kiln-pipeline.yaml", ns))
		var out lockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		out.waitFor(t, "Waiting up to 3m0s for the rollout of 1 Deployment", time.Minute)
		d, err := kc.AppsV1().Deployments(ns).Get(ctx, "hello", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if img := d.Spec.Template.Spec.Containers[0].Image; img != "registry.example/demo/hello:7" {
			t.Errorf("image %q, want registry.example/demo/hello:7", img)
		}
		// The new ReplicaSet's pod exists but is not ready yet ...
		d = setRolloutStatus(t, kc, d, 1, 0)
		out.waitFor(t, "0 of 1 updated replicas are available", time.Minute)
		select {
		case err := <-done:
			t.Fatalf("pipeline run ended before the rollout did (%v):\n%s", err, out.String())
		default:
		}
		// ... then it is.
		setRolloutStatus(t, kc, d, 1, 1)
		err = <-done
		if code := exitCodeOf(t, err); code != 0 {
			t.Fatalf("exit code %d after the rollout completed, want 0:\n%s", code, out.String())
		}
		wantAll(t, "the log", out.String(), "deployment.apps/hello created", "successfully rolled out", "<== deploy stage done")
	})

	t.Run("interrupted", func(t *testing.T) {
		ns := api.Namespace(t)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := c.command(ctx, args(t, "kiln-pipeline.yaml", ns))
		var out lockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		out.waitFor(t, "Waiting up to", time.Minute)
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := exitCodeOf(t, cmd.Wait()); code != 1 {
			t.Fatalf("exit code %d after SIGTERM, want 1:\n%s", code, out.String())
		}
		wantAll(t, "the log", out.String(), "pipeline hello interrupted: deploy stage failed: ", "context canceled")
	})

	t.Run("times out", func(t *testing.T) {
		ns := api.Namespace(t)
		short := strings.Replace(readFile(t, filepath.Join(app, "kiln-pipeline.yaml")), "timeout: 3m", "timeout: 2s", 1)
		if !strings.Contains(short, "timeout: 2s") {
			t.Fatalf("examples/hello/kiln-pipeline.yaml has no deploy.timeout of 3m to shorten:\n%s", short)
		}
		if err := os.WriteFile(filepath.Join(app, "short-timeout.yaml"), []byte(short), 0o644); err != nil {
			t.Fatal(err)
		}
		res := c.want(t, 5, args(t, "short-timeout.yaml", ns)...)
		wantAll(t, "the log", res.stderr, "deploy stage failed", "deployment.apps/hello",
			"rollout not complete after 2s: waiting for the Deployment controller to observe generation 1",
			"has not observed generation 1", "no pod matches the Deployment's selector app=hello")
	})
}

// setRolloutStatus writes d's status as the Deployment controller would once its new ReplicaSet
// has one updated replica, ready of which are available; it returns the updated Deployment.
func setRolloutStatus(t *testing.T, kc kubernetes.Interface, d *appsv1.Deployment, updated, ready int32) *appsv1.Deployment {
	t.Helper()
	d = d.DeepCopy()
	available := corev1.ConditionFalse
	if ready >= updated {
		available = corev1.ConditionTrue
	}
	now := metav1.Now()
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation, Replicas: updated, UpdatedReplicas: updated,
		ReadyReplicas: ready, AvailableReplicas: ready, UnavailableReplicas: updated - ready,
		Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: available, Reason: "MinimumReplicasAvailable", LastUpdateTime: now, LastTransitionTime: now},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "ReplicaSetUpdated", LastUpdateTime: now, LastTransitionTime: now},
		},
	}
	out, err := kc.AppsV1().Deployments(d.Namespace).UpdateStatus(context.Background(), d, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update the status of deployment %s/%s: %v", d.Namespace, d.Name, err)
	}
	return out
}

// copyHello copies examples/hello into a fresh workspace (without a build output someone left
// in the checkout) and returns it.
func copyHello(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "hello")
	if out, err := exec.Command("cp", "-a", filepath.Join(repoRoot(t), "examples/hello"), dst).CombinedOutput(); err != nil {
		t.Fatalf("copy examples/hello: %v: %s", err, out)
	}
	if err := os.RemoveAll(filepath.Join(dst, "out")); err != nil {
		t.Fatal(err)
	}
	return dst
}

// pipelineAccount applies the pipeline's least-privilege RBAC (render.PipelineRBAC, as rbac.yaml
// renders it) in namespace ns and returns a kubeconfig with a token of its service account.
func pipelineAccount(t *testing.T, api *kube.APIServer, file, ns string) string {
	t.Helper()
	p, err := spec.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	p.Build, p.Image = nil, nil // their variables are not needed here
	p, err = p.Expand(spec.Lookup(map[string]string{"NAMESPACE": ns, "REGISTRY": "r", "BUILD_NUMBER": "0"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	sa, role, binding := render.PipelineRBAC(p)
	if sa.Namespace != ns {
		t.Fatalf("PipelineRBAC put the account in namespace %q, want the pipeline's %q", sa.Namespace, ns)
	}
	ctx, kc := context.Background(), api.Client(t)
	if _, err := kc.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return api.ServiceAccountKubeconfig(t, ns, sa.Name)
}

// checkAccountLimits checks that the pipeline's account, which could apply, may neither delete
// what it applied nor read a Secret.
func checkAccountLimits(t *testing.T, kubeconfig, ns string) {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := kc.AppsV1().Deployments(ns).Delete(ctx, "hello", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("the pipeline's account deleting deployment hello: %v, want forbidden", err)
	}
	if _, err := kc.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("the pipeline's account listing secrets: %v, want forbidden", err)
	}
}

// checkHelloImage checks the pushed image's config: the Dockerfile's user, port and entrypoint.
func checkHelloImage(t *testing.T, reg *testenv.Registry, ref string) {
	t.Helper()
	cf := testenv.Config(t, reg, ref)
	if c := cf.Config; c.User != "app" || !slices.Equal(c.Entrypoint, []string{"/app/hello"}) || c.WorkingDir != "/app" {
		t.Errorf("%s: user %q, entrypoint %q, workdir %q; want app, [/app/hello], /app", ref, c.User, c.Entrypoint, c.WorkingDir)
	}
	if _, ok := cf.Config.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("%s exposes %v, want 8080/tcp", ref, cf.Config.ExposedPorts)
	}
}

// checkHelloObjects checks what the deploy stage applied: the Deployment runs image with its
// port named http at 8080, the Service maps 8082 to that port, and both are kiln's.
func checkHelloObjects(t *testing.T, kc kubernetes.Interface, ns, image string) {
	t.Helper()
	ctx := context.Background()
	d, err := kc.AppsV1().Deployments(ns).Get(ctx, "hello", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctr := d.Spec.Template.Spec.Containers[0]
	if ctr.Image != image {
		t.Errorf("deployment hello runs %q, want %q", ctr.Image, image)
	}
	if len(ctr.Ports) != 1 || ctr.Ports[0].Name != "http" || ctr.Ports[0].ContainerPort != 8080 {
		t.Errorf("deployment hello's ports %+v, want http at 8080", ctr.Ports)
	}
	svc, err := kc.CoreV1().Services(ns).Get(ctx, "hello", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p := svc.Spec.Ports; len(p) != 1 || p[0].Port != 8082 || p[0].TargetPort != intstr.FromString("http") {
		t.Errorf("service hello's ports %+v, want 8082 to the port named http", p)
	}
	for _, m := range [][]metav1.ManagedFieldsEntry{d.ManagedFields, svc.ManagedFields} {
		if !slices.ContainsFunc(m, func(e metav1.ManagedFieldsEntry) bool {
			return e.Manager == "kiln" && e.Operation == metav1.ManagedFieldsOperationApply
		}) {
			t.Errorf("no server-side apply by field manager kiln in %+v", m)
		}
	}
}

var cacheLine = regexp.MustCompile(`(\[\d+/\d+\]) cache (hit|miss) for key`)

// cacheSteps returns the steps ("[3/7]") the log shows a cache hit or miss for.
func cacheSteps(log, kind string) []string {
	var steps []string
	for _, m := range cacheLine.FindAllStringSubmatch(log, -1) {
		if m[2] == kind {
			steps = append(steps, m[1])
		}
	}
	return steps
}

// runHelloImage pulls ref, unpacks it with the sandbox package, runs its entrypoint as its user
// with PORT set to a free port, and returns what GET / answers.
func runHelloImage(t *testing.T, reg *testenv.Registry, ref string) string {
	t.Helper()
	img := pull(t, reg, ref)
	ctx, cancel := context.WithCancel(context.Background())
	dir := filepath.Join(t.TempDir(), "rootfs")
	root, err := sandbox.Unpack(ctx, img, dir)
	if err != nil {
		cancel()
		t.Fatalf("unpack %s: %v", ref, err)
	}
	port := strings.TrimPrefix(closedAddr(t), "127.0.0.1:")
	var out lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- root.Run(ctx, sandbox.Command{Env: []string{"PORT=" + port}, Stdout: &out, Stderr: &out})
	}()
	defer func() {
		cancel()
		<-done
	}()
	base := "http://127.0.0.1:" + port
	deadline := time.Now().Add(30 * time.Second)
	for !httpOK(base + "/healthz") {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("%s exited before answering: %v\n%s", ref, err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer on %s/healthz within 30s:\n%s", ref, base, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	checkAppUser(t, "PORT="+port, 34000)
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	wantAll(t, "the app's log", out.String(), "hello v1.0 listening on :"+port)
	return string(body)
}

func httpOK(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// checkAppUser checks that the app's process (the one whose environment holds env, unique to
// this run) runs as uid: the image's USER, resolved from the image's own /etc/passwd.
func checkAppUser(t *testing.T, env string, uid int) {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		environ, err := os.ReadFile(filepath.Join(d, "environ"))
		if err != nil || !slices.Contains(strings.Split(string(environ), "\x00"), env) {
			continue
		}
		if comm, _ := os.ReadFile(filepath.Join(d, "comm")); strings.TrimSpace(string(comm)) != "hello" {
			continue
		}
		status, err := os.ReadFile(filepath.Join(d, "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" && f[1] != strconv.Itoa(uid) {
				t.Errorf("the app runs as uid %s, want the image's user (%d)", f[1], uid)
			}
		}
		return
	}
	t.Errorf("no process named hello with %s in its environment", env)
}
