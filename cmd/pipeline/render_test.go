package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rendered is a pipeline render needs nothing more for: no variable it must decide.
const rendered = `name: app
namespace: apps
source:
  git: https://git.example/team/app.git
build:
  image: golang:1.26
  command: go build -o out/app .
  output: out
image:
  destination: registry.example/app:${BUILD_NUMBER}
deploy:
  manifests: [app.yaml]
  replacements:
    <TAG>: ${BUILD_NUMBER}
`

func TestPipelineRenderCmd(t *testing.T) {
	file := writePipeline(t, rendered)
	out := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := call("render", "-f", file, "-o", out, "--for", "job", "--for", "gitlab")
	if code != 0 || stderr != "" {
		t.Fatalf("render: exit code %d:\n%s", code, stderr)
	}
	var want []string
	for _, n := range []string{".gitlab-ci.yml", "job.yaml", "rbac.yaml", "regcred.sh"} { // sorted
		want = append(want, "wrote "+filepath.Join(out, n))
		if _, err := os.Stat(filepath.Join(out, n)); err != nil {
			t.Errorf("%s not written: %v", n, err)
		}
	}
	if got := strings.Split(strings.TrimSpace(stdout), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("render printed:\n%s\nwant:\n%s", stdout, strings.Join(want, "\n"))
	}
	job, err := os.ReadFile(filepath.Join(out, "job.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(job), "generateName: app-") {
		t.Errorf("without --build-number the Job has no generateName:\n%s", job)
	}

	code, _, stderr = call("render", "-f", file, "-o", t.TempDir(), "--for", "job", "--build-number", "12")
	if code != 0 {
		t.Fatalf("render --build-number: exit code %d:\n%s", code, stderr)
	}

	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := call("render", "-f", file, "-o", notDir); code != 1 || !strings.Contains(stderr, notDir) {
		t.Errorf("render into a file: exit code %d (want 1), stderr:\n%s", code, stderr)
	}
}

func TestPipelineRenderCmdUsage(t *testing.T) {
	file := writePipeline(t, rendered)
	bad := writePipeline(t, "name: app\nbuild:\n  image: golang\n  comand: make\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"render", "-f", file}, "render needs -o DIR"},
		{[]string{"render", "-f", file, "-o", t.TempDir(), "--for", "circleci"}, `unknown render target "circleci"`},
		{[]string{"render", "-f", file, "-o", t.TempDir(), "--var", "X"}, `--var "X": must be NAME=VALUE`},
		{[]string{"render", "-f", bad, "-o", t.TempDir()}, "kiln-pipeline.yaml:4: build.comand: unknown key"},
		{[]string{"render", "-f", filepath.Join(t.TempDir(), "absent.yaml"), "-o", t.TempDir()}, "absent.yaml"},
		{[]string{"render", "--output"}, "flag needs an argument"},
	} {
		if code, stdout, stderr := call(tc.args...); code != 2 || stdout != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("pipeline %q: exit code %d (want 2), stdout %q, stderr lacks %q:\n%s", tc.args, code, stdout, tc.want, stderr)
		}
	}
}
