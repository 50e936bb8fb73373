package main

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/pipeline"
	"github.com/kilnbuild/kiln/pipeline/spec"
)

// threeStages is a pipeline whose every stage needs a variable of its own.
const threeStages = `name: app
build:
  image: ${GO_IMAGE}
  command: make
image:
  destination: ${REGISTRY}/app:${BUILD_NUMBER}
deploy:
  manifests: [app.yaml]
  replacements:
    <TAG>: ${BUILD_NUMBER}
`

func writePipeline(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kiln-pipeline.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPipelineRunFlags(t *testing.T) {
	t.Setenv("BUILD_NUMBER", "41")
	var f runFlags
	fs := newRunFlagSet(&f)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if f.file != spec.DefaultFileName || f.buildNumber != "41" || !f.wait || f.logFormat != "text" || f.verbosity != "info" ||
		f.kubeconfig != "" || f.namespace != "" || f.workspace != "" || f.stages != nil || f.vars != nil {
		t.Errorf("defaults: %+v", f)
	}

	f = runFlags{}
	fs = newRunFlagSet(&f)
	err := fs.Parse([]string{"-f", "p.yaml", "--build-number", "7", "--stage", "build", "--stage", "image,deploy",
		"--var", "A=1", "--var", "B=2,3", "-n", "apps", "--kubeconfig", "kc", "--wait=false", "--workspace", "ws",
		"--log-format", "json", "-v", "debug"})
	if err != nil {
		t.Fatal(err)
	}
	want := runFlags{file: "p.yaml", buildNumber: "7", kubeconfig: "kc", namespace: "apps", workspace: "ws",
		vars: []string{"A=1", "B=2,3"}, stages: []string{"build", "image,deploy"}, logFormat: "json", verbosity: "debug"}
	if !slices.Equal(f.vars, want.vars) || !slices.Equal(f.stages, want.stages) {
		t.Errorf("lists: vars %q, stages %q", f.vars, f.stages)
	}
	f.vars, f.stages, want.vars, want.stages = nil, nil, nil, nil
	if !reflect.DeepEqual(f, want) {
		t.Errorf("parsed %+v\nwant   %+v", f, want)
	}
	if !fs.Changed("wait") {
		t.Error("--wait=false not seen as given: it would not override deploy.wait")
	}
}

func TestPipelineKeepStages(t *testing.T) {
	for _, tc := range []struct {
		stages []string
		want   string
	}{
		{nil, "build image deploy"},
		{[]string{"deploy"}, "deploy"},
		{[]string{"build", "image"}, "build image"},
		{[]string{"image", "nonsense"}, "image"},
	} {
		p, err := spec.Load(writePipeline(t, threeStages))
		if err != nil {
			t.Fatal(err)
		}
		keepStages(p, tc.stages)
		var kept []string
		for name, there := range map[string]bool{"build": p.Build != nil, "image": p.Image != nil, "deploy": p.Deploy != nil} {
			if there {
				kept = append(kept, name)
			}
		}
		slices.SortFunc(kept, func(a, b string) int { return slices.Index(pipeline.Stages(), a) - slices.Index(pipeline.Stages(), b) })
		if got := strings.Join(kept, " "); got != tc.want {
			t.Errorf("keepStages(%q) kept %q, want %q", tc.stages, got, tc.want)
		}
	}
}

func TestPipelineLoadExpanded(t *testing.T) {
	file := writePipeline(t, threeStages)
	t.Setenv("REGISTRY", "env.example/team")
	unsetenv(t, "GO_IMAGE")

	// Only the deploy stage: the build's and the image's variables need no value.
	p, err := loadExpanded(&runFlags{file: file, buildNumber: "9", stages: []string{"deploy"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Build != nil || p.Image != nil || p.Deploy.Replacements["<TAG>"] != "9" {
		t.Errorf("deploy only: build %v, image %v, replacements %v", p.Build, p.Image, p.Deploy.Replacements)
	}

	// --var before the environment, --build-number before --var BUILD_NUMBER.
	p, err = loadExpanded(&runFlags{file: file, buildNumber: "10",
		vars: []string{"GO_IMAGE=golang:1.26", "REGISTRY=flag.example/team", "BUILD_NUMBER=1"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Build.Image != "golang:1.26" || !slices.Equal(p.Image.Destinations, []string{"flag.example/team/app:10"}) {
		t.Errorf("expanded build image %q, destinations %q", p.Build.Image, p.Image.Destinations)
	}
	p, err = loadExpanded(&runFlags{file: file, buildNumber: "11", vars: []string{"GO_IMAGE=golang:1.26"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Image.Destinations; !slices.Equal(got, []string{"env.example/team/app:11"}) {
		t.Errorf("REGISTRY from the environment: destinations %q", got)
	}

	// Every stage, GO_IMAGE set nowhere: the error names it, its line and key.
	_, err = loadExpanded(&runFlags{file: file, buildNumber: "12"})
	if err == nil || !strings.Contains(err.Error(), "kiln-pipeline.yaml:3: build.image: ${GO_IMAGE} is not set") {
		t.Errorf("unset GO_IMAGE: %v", err)
	}
	if _, err := loadExpanded(&runFlags{file: file, vars: []string{"GO_IMAGE"}}); err == nil || !strings.Contains(err.Error(), `--var "GO_IMAGE"`) {
		t.Errorf("bad --var: %v", err)
	}
}

// TestRunCmdUsage covers what `pipeline run` refuses before any stage runs: exit code 2 and
// a message naming the flag, file, line or stage at fault.
func TestPipelineRunCmdUsage(t *testing.T) {
	unsetenv(t, "GO_IMAGE")
	file := writePipeline(t, threeStages)
	buildOnly := writePipeline(t, "name: app\nbuild:\n  image: busybox\n  command: make\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--log-format", "xml", "-f", file}, "--log-format=xml: must be text, color or json"},
		{[]string{"run", "-v", "loud", "-f", file}, "--verbosity=loud"},
		{[]string{"run", "-f", filepath.Join(t.TempDir(), "absent.yaml")}, "absent.yaml: no such file"},
		{[]string{"run", "-f", file, "--build-number", "1"}, "build.image: ${GO_IMAGE} is not set"},
		{[]string{"run", "-f", buildOnly, "--stage", "deploy"}, `has no "deploy" section`},
		{[]string{"run", "-f", buildOnly, "--stage", "compile"}, "--stage compile: must be one of build, image, deploy"},
		{[]string{"run", "-f", buildOnly, "--workspace", filepath.Join(t.TempDir(), "absent")}, "is not a directory"},
		{[]string{"run", "-f", buildOnly, "stray"}, `unexpected argument "stray"`},
	} {
		code, stdout, stderr := call(tc.args...)
		if code != pipeline.ExitUsage || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("pipeline %q: exit code %d (want 2), stdout %q, stderr lacks %q:\n%s", tc.args, code, stdout, tc.want, stderr)
		}
		if strings.Contains(stderr, "==> ") {
			t.Errorf("pipeline %q started a stage:\n%s", tc.args, stderr)
		}
	}
	if code, _, stderr := call("run", "--help"); code != 0 || !strings.Contains(stderr, "--build-number string") {
		t.Errorf("run --help: exit code %d:\n%s", code, stderr)
	}
}

// unsetenv unsets name for the test, restoring it afterwards.
func unsetenv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "") // restores the old value at cleanup
	os.Unsetenv(name)
}
