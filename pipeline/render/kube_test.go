package render

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/kilnbuild/kiln/pipeline/spec"
)

// decodeAll splits a multi-document YAML file and decodes every document with client-go's
// scheme, strictly: an unknown or duplicate field fails the test.
func decodeAll(t *testing.T, name string, data []byte) []runtime.Object {
	t.Helper()
	dec := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []runtime.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, gvk, err := dec.Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("%s: document %d: %v\n%s", name, len(objs)+1, err, doc)
		}
		if gvk.Kind == "" || gvk.Version == "" {
			t.Fatalf("%s: document %d has no kind or apiVersion", name, len(objs)+1)
		}
		objs = append(objs, obj)
	}
	return objs
}

// only returns the one object of type T in objs.
func only[T runtime.Object](t *testing.T, name string, objs []runtime.Object) T {
	t.Helper()
	var found []T
	for _, o := range objs {
		if v, ok := o.(T); ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		var zero T
		t.Fatalf("%s: %d objects of type %T, want 1", name, len(found), zero)
	}
	return found[0]
}

func renderWalkthrough(t *testing.T, o Options) map[string][]byte {
	t.Helper()
	files, err := RenderWith(walkthrough(), o)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func TestBuildPod(t *testing.T) {
	files := renderWalkthrough(t, Options{})
	objs := decodeAll(t, FileBuildPod, files[FileBuildPod])
	if len(objs) != 1 {
		t.Fatalf("%d objects, want the pod alone", len(objs))
	}
	pod := only[*corev1.Pod](t, FileBuildPod, objs)
	eq(t, "namespace", pod.Namespace, "default")
	eq(t, "serviceAccountName", pod.Spec.ServiceAccountName, "minimalapi-pipeline")
	if len(pod.Spec.Containers) != 2 {
		t.Fatalf("containers %d, want build and kaniko", len(pod.Spec.Containers))
	}
	build, kaniko := pod.Spec.Containers[0], pod.Spec.Containers[1]
	eq(t, "build container", []string{build.Name, build.Image}, []string{"build", "mcr.microsoft.com/dotnet/sdk:6.0-alpine"})
	eq(t, "build command", build.Command, []string{"cat"})
	eq(t, "build tty", build.TTY, true)
	eq(t, "build mounts", len(build.VolumeMounts), 0)
	eq(t, "kaniko container", []string{kaniko.Name, kaniko.Image}, []string{"kaniko", "ghcr.io/kilnbuild/executor:debug"})
	eq(t, "kaniko command", kaniko.Command, []string{"/busybox/cat"})
	eq(t, "kaniko tty", kaniko.TTY, true)
	eq(t, "kaniko mounts", kaniko.VolumeMounts, []corev1.VolumeMount{{Name: "docker-config", MountPath: "/kaniko/.docker", ReadOnly: true}})
	eq(t, "volumes", pod.Spec.Volumes, []corev1.Volume{{Name: "docker-config", VolumeSource: corev1.VolumeSource{
		Secret: &corev1.SecretVolumeSource{SecretName: "regcred", Items: []corev1.KeyToPath{{Key: ".dockerconfigjson", Path: "config.json"}}},
	}}})

	// The pipeline's executor image and Secret, when it names them.
	p := walkthrough()
	p.ExecutorImage, p.RegistrySecret = "registry.example.com/kiln/executor:v1-debug", "pushcreds"
	p.Build = nil
	files, err := Render(p, TargetJenkins)
	if err != nil {
		t.Fatal(err)
	}
	pod = only[*corev1.Pod](t, FileBuildPod, decodeAll(t, FileBuildPod, files[FileBuildPod]))
	if len(pod.Spec.Containers) != 1 || pod.Spec.Containers[0].Image != p.ExecutorImage {
		t.Errorf("without a build stage: containers %+v, want kaniko alone on %s", pod.Spec.Containers, p.ExecutorImage)
	}
	eq(t, "secret", pod.Spec.Volumes[0].Secret.SecretName, "pushcreds")
}

func TestJob(t *testing.T) {
	files := renderWalkthrough(t, Options{Targets: []string{TargetJob}})
	job := only[*batchv1.Job](t, FileJob, decodeAll(t, FileJob, files[FileJob]))
	eq(t, "generateName", job.GenerateName, "minimalapi-")
	eq(t, "name", job.Name, "")
	eq(t, "namespace", job.Namespace, "default")
	eq(t, "backoffLimit", *job.Spec.BackoffLimit, int32(0))
	ps := job.Spec.Template.Spec
	eq(t, "restartPolicy", ps.RestartPolicy, corev1.RestartPolicyNever)
	eq(t, "serviceAccountName", ps.ServiceAccountName, "minimalapi-pipeline")
	if _, ok := job.Spec.Template.Labels["app.kubernetes.io/name"]; ok {
		t.Error("the Job's pods carry app.kubernetes.io/name: the app's Service could select them")
	}
	var names []string
	for _, c := range ps.InitContainers {
		names = append(names, c.Name)
	}
	eq(t, "init containers", names, []string{"source", "build", "image"})
	if len(ps.Containers) != 1 {
		t.Fatalf("containers %d, want deploy alone", len(ps.Containers))
	}
	source, build, image, deploy := ps.InitContainers[0], ps.InitContainers[1], ps.InitContainers[2], ps.Containers[0]

	wantEnv := []corev1.EnvVar{{Name: "BUILD_NUMBER", Value: "${BUILD_NUMBER}"}, {Name: "REGISTRY_USER", Value: "${REGISTRY_USER}"}}
	ws := corev1.VolumeMount{Name: "workspace", MountPath: "/workspace"}
	creds := corev1.VolumeMount{Name: "docker-config", MountPath: "/kaniko/.docker", ReadOnly: true}

	eq(t, "source image", source.Image, "ghcr.io/kilnbuild/executor:debug")
	eq(t, "source command", source.Command, []string{"/kaniko/pipeline", "checkout",
		"--git", "https://github.com/kilnbuild/minimalapi.git", "--ref", "main", "--dir", "/workspace"})
	eq(t, "source mounts", source.VolumeMounts, []corev1.VolumeMount{ws})

	eq(t, "build image", build.Image, "mcr.microsoft.com/dotnet/sdk:6.0-alpine")
	eq(t, "build workingDir", build.WorkingDir, "/workspace")
	eq(t, "build command", build.Command, []string{"/bin/sh", "-c", walkthrough().Build.Command.Shell})
	eq(t, "build env", build.Env, wantEnv)
	eq(t, "build mounts", build.VolumeMounts, []corev1.VolumeMount{ws})

	eq(t, "image image", image.Image, "ghcr.io/kilnbuild/executor:debug")
	eq(t, "image command", image.Command, []string{"/kaniko/executor"})
	for _, arg := range []string{"--cache=true", "--cache-copy-layers=true", "--cache-repo=$(REGISTRY_USER)/kaniko-cache",
		"--destination=$(REGISTRY_USER)/minimalapi:$(BUILD_NUMBER)"} {
		if !containsArg(image.Args, arg) {
			t.Errorf("image args %q lack %s", image.Args, arg)
		}
	}
	if !slices.ContainsFunc(image.Args, func(a string) bool { return strings.Contains(a, "/workspace") }) {
		t.Errorf("image args %q do not name the workspace", image.Args)
	}
	for _, a := range image.Args {
		if strings.Contains(a, "${") {
			t.Errorf("image arg %q holds a ${VAR} that Kubernetes does not expand", a)
		}
	}
	eq(t, "image env", image.Env, wantEnv)
	eq(t, "image mounts", image.VolumeMounts, []corev1.VolumeMount{ws, creds})

	eq(t, "deploy image", deploy.Image, "ghcr.io/kilnbuild/executor:debug")
	eq(t, "deploy command", deploy.Command, []string{"/kaniko/pipeline", "run", "-f", "/workspace/kiln-pipeline.yaml",
		"--stage", "deploy", "--build-number", "$(BUILD_NUMBER)"})
	eq(t, "deploy env", deploy.Env, wantEnv)
	eq(t, "deploy mounts", deploy.VolumeMounts, []corev1.VolumeMount{ws})

	eq(t, "volumes", ps.Volumes, []corev1.Volume{
		{Name: "workspace", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "docker-config", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: "regcred", Items: []corev1.KeyToPath{{Key: ".dockerconfigjson", Path: "config.json"}}}}},
	})
	if !strings.Contains(string(files[FileJob]), "envsubst '$BUILD_NUMBER $REGISTRY_USER' < job.yaml | kubectl create -f -") {
		t.Errorf("job.yaml does not say how to fill in its placeholders:\n%s", files[FileJob])
	}
}

func containsArg(args []string, want string) bool { return slices.Contains(args, want) }

// TestJobOptions: a build number names the Job and fills BUILD_NUMBER; Vars fill the others; a
// pipeline file in a subdirectory moves the working directory, the context and the -f path.
func TestJobOptions(t *testing.T) {
	p := walkthrough()
	p.Namespace = "apps"
	p.Source.Ref = ""
	p.Build.Command = spec.Command{Exec: []string{"make", "VERSION=${BUILD_NUMBER}", "$(not a var)"}}
	p.Build.Workdir = "/workspace/src"
	p.Build.Env = map[string]string{"TAG": "v${BUILD_NUMBER}", "CGO_ENABLED": "0"}
	files, err := RenderWith(p, Options{
		Targets: []string{TargetJob}, BuildNumber: "42", PipelineFile: "apps/minimalapi/kiln-pipeline.yaml",
		Vars: map[string]string{"REGISTRY_USER": "kiln", "UNUSED": "x"},
	})
	if err != nil {
		t.Fatal(err)
	}
	job := only[*batchv1.Job](t, FileJob, decodeAll(t, FileJob, files[FileJob]))
	eq(t, "name", job.Name, "minimalapi-42")
	eq(t, "generateName", job.GenerateName, "")
	eq(t, "namespace", job.Namespace, "apps")
	ps := job.Spec.Template.Spec
	source, build, image, deploy := ps.InitContainers[0], ps.InitContainers[1], ps.InitContainers[2], ps.Containers[0]
	eq(t, "source command", source.Command, []string{"/kaniko/pipeline", "checkout",
		"--git", "https://github.com/kilnbuild/minimalapi.git", "--dir", "/workspace"})
	eq(t, "build workingDir", build.WorkingDir, "/workspace/apps/minimalapi/src")
	eq(t, "build command", build.Command, []string{"make", "VERSION=$(BUILD_NUMBER)", "$$(not a var)"})
	eq(t, "build env", build.Env, []corev1.EnvVar{
		{Name: "BUILD_NUMBER", Value: "42"}, {Name: "REGISTRY_USER", Value: "kiln"},
		{Name: "CGO_ENABLED", Value: "0"}, {Name: "TAG", Value: "v$(BUILD_NUMBER)"},
	})
	eq(t, "image env", image.Env, []corev1.EnvVar{{Name: "BUILD_NUMBER", Value: "42"}, {Name: "REGISTRY_USER", Value: "kiln"}})
	if !slices.ContainsFunc(image.Args, func(a string) bool { return strings.Contains(a, "/workspace/apps/minimalapi") }) {
		t.Errorf("image args %q: the context is not the pipeline's directory", image.Args)
	}
	eq(t, "deploy command", deploy.Command, []string{"/kaniko/pipeline", "run", "-f", "/workspace/apps/minimalapi/kiln-pipeline.yaml",
		"--stage", "deploy", "--build-number", "$(BUILD_NUMBER)"})
	if !strings.Contains(string(files[FileJob]), "Submit it with: kubectl create -f job.yaml") {
		t.Errorf("job.yaml with every value given still mentions placeholders:\n%s", files[FileJob])
	}

	if _, err := RenderWith(p, Options{Targets: []string{TargetJob}, BuildNumber: "4 2"}); err == nil ||
		!strings.Contains(err.Error(), `build number "4 2" cannot name the Job "minimalapi-4 2"`) {
		t.Errorf("a build number that cannot name the Job: error %v", err)
	}

	// Without build and deploy stages the image stage is the pod's container.
	p = walkthrough()
	p.Build, p.Deploy = nil, nil
	files, err = Render(p, TargetJob)
	if err != nil {
		t.Fatal(err)
	}
	job = only[*batchv1.Job](t, FileJob, decodeAll(t, FileJob, files[FileJob]))
	if ic, c := job.Spec.Template.Spec.InitContainers, job.Spec.Template.Spec.Containers; len(ic) != 1 || ic[0].Name != "source" ||
		len(c) != 1 || c[0].Name != "image" {
		t.Errorf("image stage alone: init containers %v, containers %v; want source, then image", ic, c)
	}
}

func TestRBAC(t *testing.T) {
	files := renderWalkthrough(t, Options{})
	objs := decodeAll(t, FileRBAC, files[FileRBAC])
	for _, o := range objs {
		switch o.(type) {
		case *corev1.ServiceAccount, *rbacv1.Role, *rbacv1.RoleBinding:
		default:
			t.Errorf("rbac.yaml holds a %T: only namespaced ServiceAccounts, Roles and RoleBindings belong there", o)
		}
	}
	if len(objs) != 6 {
		t.Fatalf("rbac.yaml: %d objects, want the pipeline's and Jenkins' account, Role and RoleBinding", len(objs))
	}
	rw := []string{"get", "list", "watch", "create", "update", "patch"}
	checkAccount(t, objs[0:3], "minimalapi-pipeline", []rbacv1.PolicyRule{
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: rw},
		{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: rw},
		{APIGroups: []string{""}, Resources: []string{"pods", "events"}, Verbs: []string{"get", "list", "watch"}},
	})
	checkAccount(t, objs[3:6], "jenkins", []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create", "delete", "get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"pods/exec"}, Verbs: []string{"create", "get"}},
		{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get", "list", "watch"}},
	})
	// PipelineRBAC gives the same objects the file holds.
	sa, role, binding := PipelineRBAC(walkthrough())
	eq(t, "PipelineRBAC", []runtime.Object{sa, role, binding}, objs[0:3])
}

// checkAccount checks a ServiceAccount, Role and RoleBinding triple, all named name in the
// default namespace, the Role's rules exactly rules.
func checkAccount(t *testing.T, objs []runtime.Object, name string, rules []rbacv1.PolicyRule) {
	t.Helper()
	sa, ok1 := objs[0].(*corev1.ServiceAccount)
	role, ok2 := objs[1].(*rbacv1.Role)
	binding, ok3 := objs[2].(*rbacv1.RoleBinding)
	if !ok1 || !ok2 || !ok3 {
		t.Fatalf("%s: objects %T %T %T, want ServiceAccount, Role, RoleBinding", name, objs[0], objs[1], objs[2])
	}
	for _, m := range []struct{ kind, name, ns string }{{"ServiceAccount", sa.Name, sa.Namespace},
		{"Role", role.Name, role.Namespace}, {"RoleBinding", binding.Name, binding.Namespace}} {
		if m.name != name || m.ns != "default" {
			t.Errorf("%s %s/%s, want default/%s", m.kind, m.ns, m.name, name)
		}
	}
	eq(t, name+" rules", role.Rules, rules)
	eq(t, name+" roleRef", binding.RoleRef, rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name})
	eq(t, name+" subjects", binding.Subjects, []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: "default"}})
}

func TestJenkinsServer(t *testing.T) {
	files := renderWalkthrough(t, Options{Targets: []string{TargetJenkins}})
	objs := decodeAll(t, FileJenkins, files[FileJenkins])
	if len(objs) != 3 {
		t.Fatalf("jenkins.yaml: %d objects, want PVC, Deployment, Service", len(objs))
	}
	pvc := only[*corev1.PersistentVolumeClaim](t, FileJenkins, objs)
	d := only[*appsv1.Deployment](t, FileJenkins, objs)
	svc := only[*corev1.Service](t, FileJenkins, objs)

	eq(t, "PVC access", pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce})
	eq(t, "Deployment strategy", d.Spec.Strategy.Type, appsv1.RecreateDeploymentStrategyType)
	ps := d.Spec.Template.Spec
	eq(t, "serviceAccountName", ps.ServiceAccountName, "jenkins")
	eq(t, "fsGroup", *ps.SecurityContext.FSGroup, int64(1000))
	if len(ps.Containers) != 1 {
		t.Fatalf("%d containers, want jenkins", len(ps.Containers))
	}
	c := ps.Containers[0]
	eq(t, "image", c.Image, "jenkins/jenkins:lts")
	eq(t, "ports", c.Ports, []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "agent", ContainerPort: 50000}})
	eq(t, "mounts", c.VolumeMounts, []corev1.VolumeMount{{Name: pvc.Name, MountPath: "/var/jenkins_home"}})
	eq(t, "claim", ps.Volumes[0].PersistentVolumeClaim.ClaimName, pvc.Name)
	for what, probe := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != "/login" || probe.HTTPGet.Port.StrVal != "http" {
			t.Errorf("%s probe %+v, want GET /login on the http port", what, probe)
		}
	}
	eq(t, "selector", d.Spec.Selector.MatchLabels, map[string]string{"app.kubernetes.io/name": "jenkins"})
	eq(t, "service selector", svc.Spec.Selector, d.Spec.Selector.MatchLabels)
	if !labels.SelectorFromSet(d.Spec.Selector.MatchLabels).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("the Deployment's selector %v does not select its pods %v", d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
	}
	var ports [][2]any
	for _, p := range svc.Spec.Ports {
		ports = append(ports, [2]any{p.Port, p.TargetPort.String()})
	}
	eq(t, "service ports", ports, [][2]any{{int32(8080), "http"}, {int32(50000), "agent"}})
}
