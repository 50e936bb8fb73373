package render

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/kilnbuild/kiln/pipeline/spec"
)

func load(t *testing.T, name string) *spec.Pipeline {
	t.Helper()
	p, err := spec.Load("testdata/pipelines/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestParsedWalkthrough: the walkthrough as a pipeline file, read by the pipeline's own
// parser, renders exactly as the Go-built walkthrough() of the golden test.
func TestParsedWalkthrough(t *testing.T) {
	got, err := RenderWith(load(t, "walkthrough.yaml"), Options{PipelineFile: "kiln-pipeline.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	want, err := Render(walkthrough())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range sortedNames(want) {
		if string(got[name]) != string(want[name]) {
			t.Errorf("%s of the parsed file differs:\n%s", name, lineDiff(string(want[name]), string(got[name])))
		}
	}
}

// varsOptions render vars.yaml as if it were examples/hello/kiln-pipeline.yaml, with the one
// value it cannot do without.
func varsOptions() Options {
	return Options{PipelineFile: "examples/hello/kiln-pipeline.yaml", Vars: map[string]string{"REGISTRY": "registry.example.com:5000"}}
}

// TestVars renders a pipeline with variables in every field and form: each target expands them
// as `pipeline run` would, and what nothing expands is decided when rendering.
func TestVars(t *testing.T) {
	files, err := RenderWith(load(t, "vars.yaml"), varsOptions())
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "testdata/vars", files)

	job := only[*batchv1.Job](t, FileJob, decodeAll(t, FileJob, files[FileJob]))
	eq(t, "generateName", job.GenerateName, "hello-")
	eq(t, "namespace", job.Namespace, "apps")
	ps := job.Spec.Template.Spec
	eq(t, "serviceAccountName", ps.ServiceAccountName, "hello-pipeline")
	source, build, image, deploy := ps.InitContainers[0], ps.InitContainers[1], ps.InitContainers[2], ps.Containers[0]
	wantEnv := []corev1.EnvVar{{Name: "BUILD_NUMBER", Value: "${BUILD_NUMBER}"}, {Name: "GIT_REF", Value: "${GIT_REF}"},
		{Name: "REGISTRY", Value: "registry.example.com:5000"}}
	eq(t, "env", source.Env, wantEnv)
	eq(t, "source image", source.Image, "registry.example.com:5000/kiln/executor:debug")
	eq(t, "source command", source.Command, []string{"/kaniko/pipeline", "checkout",
		"--git", "https://git.example.com/kiln/hello.git", "--ref", "$(GIT_REF)", "--dir", "/workspace"})
	eq(t, "build image", build.Image, "registry.example.com:5000/go:1.26")
	eq(t, "build workingDir", build.WorkingDir, "/workspace/examples/hello/src")
	eq(t, "build command", build.Command, []string{"/bin/sh", "-c",
		`go build -ldflags "-X main.version=${VERSION:-dev}.${BUILD_NUMBER}" -o out/hello . && echo "$HOME"`})
	eq(t, "build env", build.Env, append(slices.Clone(wantEnv), corev1.EnvVar{Name: "CGO_ENABLED", Value: "0"},
		corev1.EnvVar{Name: "GOPROXY", Value: "off"}))
	eq(t, "image args", image.Args, []string{
		"--context=dir:///workspace/examples/hello/src", "--dockerfile=/workspace/examples/hello/src/Dockerfile",
		"--destination=$(REGISTRY)/hello:$(BUILD_NUMBER)", "--destination=$(REGISTRY)/hello:latest",
		"--cache=true", "--cache-repo=$(REGISTRY)/hello/cache", "--build-arg=BASE=$(REGISTRY)/busybox:1.36",
		"--insecure", "--label=build=$(BUILD_NUMBER)"})
	eq(t, "deploy command", deploy.Command, []string{"/kaniko/pipeline", "run", "-f", "/workspace/examples/hello/kiln-pipeline.yaml",
		"--stage", "deploy", "--build-number", "$(BUILD_NUMBER)", "--namespace", "apps"})

	pipeline, stages := jenkinsStages(t, string(files[FileJenkinsfile]))
	var params []string
	for _, n := range pipeline.children[slices.IndexFunc(pipeline.children, func(n *groovyNode) bool { return n.name == "parameters" })].children {
		params = append(params, n.args[0])
	}
	eq(t, "Jenkins parameters", params, []string{"GIT_REF", "REGISTRY"})
	eq(t, "Jenkins build script", stages[0].script, `export CGO_ENABLED=0
export GOPROXY="${GOPROXY:-off}"
cd "${WORKSPACE}/examples/hello/src"
go build -ldflags "-X main.version=${VERSION:-dev}.${BUILD_NUMBER}" -o out/hello . && echo "$HOME"`)
	calls := runScript(t, stages[1].script, []string{"WORKSPACE=/w", "REGISTRY=r.example", "BUILD_NUMBER=7", "SUFFIX=rc1"})
	eq(t, "executor calls", calls, [][]string{{"executor", "--context=dir:///w/examples/hello/src",
		"--dockerfile=/w/examples/hello/src/Dockerfile", "--destination=r.example/hello:7", "--destination=r.example/hello:latest",
		"--cache=true", "--cache-repo=r.example/hello/cache", "--build-arg=BASE=r.example/busybox:1.36", "--insecure",
		"--label=build=7-rc1", "--ignore-path=/busybox"}})
	if !strings.HasSuffix(stages[2].script, "--namespace apps") {
		t.Errorf("Jenkins deploy %q does not pin the namespace decided when rendering", stages[2].script)
	}

	regcred := string(files[FileRegcred])
	if !strings.Contains(regcred, `--docker-server="${REGISTRY_SERVER:-registry.example.com:5000}"`) || !strings.HasSuffix(regcred, "-n apps\n") {
		t.Errorf("regcred.sh: want the server of the destination with REGISTRY filled in, namespace apps:\n%s", regcred)
	}
}

// TestVarsUndecided: a value nothing expands, whose variable has no value and no default, is
// an error naming the file, the line, the key and the variable.
func TestVarsUndecided(t *testing.T) {
	_, err := Render(load(t, "vars.yaml"))
	want := "testdata/pipelines/vars.yaml:7: executorImage: ${REGISTRY} is not set"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %v, want it to start with %q", err, want)
	}
	o := varsOptions()
	o.Vars["APP"], o.Vars["NAMESPACE"] = "web", "prod"
	files, err := RenderWith(load(t, "vars.yaml"), o)
	if err != nil {
		t.Fatal(err)
	}
	job := only[*batchv1.Job](t, FileJob, decodeAll(t, FileJob, files[FileJob]))
	if got := []string{job.GenerateName, job.Namespace, job.Spec.Template.Spec.ServiceAccountName}; !reflect.DeepEqual(got, []string{"web-", "prod", "web-pipeline"}) {
		t.Errorf("with APP and NAMESPACE given: generateName, namespace, account %q", got)
	}
}
