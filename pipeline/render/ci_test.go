package render

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/kilnbuild/kiln/pipeline/imagestage"
	"github.com/kilnbuild/kiln/pipeline/spec"
)

// groovyNode is a statement of the Groovy subset a declarative Jenkinsfile uses:
// name('arg', key: 'arg') { children } or name 'arg'.
type groovyNode struct {
	name     string
	args     []string // string literals, unquoted
	children []*groovyNode
}

// parseGroovy parses a Jenkinsfile of that subset; anything else fails the test.
func parseGroovy(t *testing.T, src string) []*groovyNode {
	t.Helper()
	p := &groovyParser{t: t, src: src}
	nodes := p.block()
	if p.skip(); p.pos != len(p.src) {
		t.Fatalf("Jenkinsfile: unexpected %q at offset %d", p.src[p.pos:min(len(p.src), p.pos+20)], p.pos)
	}
	return nodes
}

type groovyParser struct {
	t   *testing.T
	src string
	pos int
}

// skip passes spaces and // comments.
func (p *groovyParser) skip() {
	for p.pos < len(p.src) {
		switch {
		case unicode.IsSpace(rune(p.src[p.pos])):
			p.pos++
		case strings.HasPrefix(p.src[p.pos:], "//"):
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
		default:
			return
		}
	}
}

func (p *groovyParser) block() []*groovyNode {
	var nodes []*groovyNode
	for {
		p.skip()
		if p.pos == len(p.src) || p.src[p.pos] == '}' {
			return nodes
		}
		nodes = append(nodes, p.statement())
	}
}

func (p *groovyParser) statement() *groovyNode {
	start := p.pos
	for p.pos < len(p.src) && (unicode.IsLetter(rune(p.src[p.pos])) || p.src[p.pos] == '_') {
		p.pos++
	}
	n := &groovyNode{name: p.src[start:p.pos]}
	if n.name == "" {
		p.t.Fatalf("Jenkinsfile: want a name at offset %d: %q", p.pos, p.src[p.pos:min(len(p.src), p.pos+20)])
	}
	p.skip()
	switch {
	case p.peek("("):
		p.pos++
		for p.skip(); !p.peek(")"); p.skip() {
			if p.peek(",") {
				p.pos++
				continue
			}
			if !p.peek("'") { // key: 'value'
				for p.pos < len(p.src) && p.src[p.pos] != ':' {
					p.pos++
				}
				p.pos++
				p.skip()
			}
			n.args = append(n.args, p.str())
		}
		p.pos++
	case p.peek("'"):
		n.args = append(n.args, p.str())
	}
	p.skip()
	if p.peek("{") {
		p.pos++
		n.children = p.block()
		if !p.peek("}") {
			p.t.Fatalf("Jenkinsfile: %s { is not closed", n.name)
		}
		p.pos++
	}
	return n
}

func (p *groovyParser) peek(s string) bool { return strings.HasPrefix(p.src[p.pos:], s) }

// str reads a single-quoted or triple-single-quoted literal and returns its value.
func (p *groovyParser) str() string {
	quote := "'"
	if p.peek("'''") {
		quote = "'''"
	} else if !p.peek("'") {
		p.t.Fatalf("Jenkinsfile: want a string at offset %d", p.pos)
	}
	p.pos += len(quote)
	var b strings.Builder
	for !p.peek(quote) {
		if p.pos >= len(p.src) {
			p.t.Fatal("Jenkinsfile: unterminated string")
		}
		if p.src[p.pos] == '\\' {
			p.pos++
		}
		b.WriteByte(p.src[p.pos])
		p.pos++
	}
	p.pos += len(quote)
	return b.String()
}

// find follows a path of names ("pipeline", "agent", ...) from nodes.
func find(t *testing.T, nodes []*groovyNode, path ...string) *groovyNode {
	t.Helper()
	var n *groovyNode
	for _, name := range path {
		i := slices.IndexFunc(nodes, func(n *groovyNode) bool { return n.name == name })
		if i < 0 {
			t.Fatalf("Jenkinsfile: no %s in %s", name, strings.Join(path, " > "))
		}
		n = nodes[i]
		nodes = n.children
	}
	return n
}

// jenkinsStage is what a stage runs: in which container, which script.
type jenkinsStage struct{ name, container, script string }

func jenkinsStages(t *testing.T, src string) (*groovyNode, []jenkinsStage) {
	t.Helper()
	root := parseGroovy(t, src)
	var stages []jenkinsStage
	for _, st := range find(t, root, "pipeline", "stages").children {
		if st.name != "stage" || len(st.args) != 1 {
			t.Fatalf("Jenkinsfile: %s%q in stages", st.name, st.args)
		}
		c := find(t, st.children, "steps", "container")
		sh := find(t, c.children, "sh")
		stages = append(stages, jenkinsStage{st.args[0], c.args[0], sh.args[0]})
	}
	return find(t, root, "pipeline"), stages
}

func TestJenkinsfile(t *testing.T) {
	files := renderWalkthrough(t, Options{Targets: []string{TargetJenkins}})
	pipeline, stages := jenkinsStages(t, string(files[FileJenkinsfile]))
	eq(t, "yamlFile", find(t, pipeline.children, "agent", "kubernetes", "yamlFile").args, []string{"build-pod.yaml"})
	eq(t, "parameters", find(t, pipeline.children, "parameters", "string").args,
		[]string{"REGISTRY_USER", "kiln-pipeline.yaml refers to ${REGISTRY_USER}"})
	want := []jenkinsStage{
		{"Build", "build", walkthrough().Build.Command.Shell},
		{"Image", "kaniko", `/kaniko/executor "--context=dir://${WORKSPACE}" "--dockerfile=${WORKSPACE}/Dockerfile" ` +
			`"--destination=${REGISTRY_USER}/minimalapi:${BUILD_NUMBER}" --cache=true "--cache-repo=${REGISTRY_USER}/kaniko-cache" ` +
			`--cache-copy-layers=true --ignore-path=/busybox`},
		{"Deploy", "kaniko", `/kaniko/pipeline run -f kiln-pipeline.yaml --stage deploy --build-number "${BUILD_NUMBER}"`},
	}
	eq(t, "stages", stages, want)

	// The containers the stages name are those of build-pod.yaml.
	pod := string(files[FileBuildPod])
	for _, st := range stages {
		if !strings.Contains(pod, "name: "+st.container+"\n") {
			t.Errorf("stage %s runs in container %s, which build-pod.yaml lacks", st.name, st.container)
		}
	}

	// The Image stage's script, run by a shell with Jenkins' environment, gives the executor
	// exactly ExecutorArgs with the workspace and the variables filled in.
	env := []string{"WORKSPACE=/home/jenkins/agent/workspace/minimal api", "REGISTRY_USER=kiln", "BUILD_NUMBER=7"}
	calls := runScript(t, stages[1].script, env)
	img := *walkthrough().Image
	img.Destinations = []string{"kiln/minimalapi:7"}
	img.CacheRepo = "kiln/kaniko-cache"
	wantArgs := append(imagestage.ExecutorArgs(&img, "/home/jenkins/agent/workspace/minimal api"), "--ignore-path=/busybox")
	eq(t, "executor calls", calls, [][]string{append([]string{"executor"}, wantArgs...)})
	eq(t, "deploy calls", runScript(t, stages[2].script, env),
		[][]string{{"pipeline", "run", "-f", "kiln-pipeline.yaml", "--stage", "deploy", "--build-number", "7"}})
}

// TestJenkinsfileScripts: a build stage with env, a working directory and an exec-form command
// becomes a multi-line script that a shell runs as the pipeline says.
func TestJenkinsfileScripts(t *testing.T) {
	p := walkthrough()
	p.Build.Env = map[string]string{"VERSION": "1.${BUILD_NUMBER}", "QUOTE": "it's"}
	p.Build.Workdir = "/workspace/src"
	p.Build.Command = spec.Command{Exec: []string{"/kaniko/executor", "a b", "$$HOME", "$HOME", "${VERSION}", "${QUOTE}"}}
	files, err := RenderWith(p, Options{Targets: []string{TargetJenkins}, PipelineFile: "app/kiln-pipeline.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	_, stages := jenkinsStages(t, string(files[FileJenkinsfile]))
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "app", "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	calls, _ := runScriptFiles(t, stages[0].script, []string{"WORKSPACE=" + dir, "BUILD_NUMBER=7", "HOME=/root"})
	eq(t, "build calls", calls, [][]string{{"executor", "a b", "$HOME", "/root", "1.7", "it's", "pwd=" + filepath.Join(dir, "app", "src")}})
	if !strings.Contains(stages[2].script, "-f app/kiln-pipeline.yaml") {
		t.Errorf("deploy script %q does not name the pipeline file in its directory", stages[2].script)
	}
}

// runScript runs a rendered shell script with sh, /kaniko/executor and /kaniko/pipeline
// replaced by programs that record their arguments, and /kaniko/.docker by a temporary
// directory. It returns the recorded calls.
func runScript(t *testing.T, script string, env []string) [][]string {
	t.Helper()
	calls, _ := runScriptFiles(t, script, env)
	return withoutPwd(calls)
}

// withoutPwd drops the working directory the fakes record after the arguments.
func withoutPwd(calls [][]string) [][]string {
	var out [][]string
	for _, c := range calls {
		out = append(out, c[:len(c)-1])
	}
	return out
}

func runScriptFiles(t *testing.T, script string, env []string) (calls [][]string, dockerDir string) {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh on this machine")
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	dockerDir = filepath.Join(dir, "docker")
	var fakes []string
	for _, name := range []string{"executor", "pipeline"} {
		fake := filepath.Join(dir, name)
		body := fmt.Sprintf("#!/bin/sh\n{ printf '%%s\\0' %s \"$@\" \"pwd=$(pwd)\"; printf '\\n'; } >> %s\n", name, shellWord(log))
		if err := os.WriteFile(fake, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
		fakes = append(fakes, "/kaniko/"+name, fake)
	}
	fakes = append(fakes, "/kaniko/.docker", dockerDir)
	cmd := exec.Command(sh, "-e", "-c", strings.NewReplacer(fakes...).Replace(script))
	cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, env...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sh -c %q: %v\n%s", script, err, out)
	}
	data, err := os.ReadFile(log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if line == "" {
			continue
		}
		words := strings.Split(strings.TrimSuffix(line, "\x00"), "\x00")
		calls = append(calls, words)
	}
	return calls, dockerDir
}

// gitlabKeys are the keys a GitLab job of ours may have, all of them GitLab keywords.
var gitlabKeys = []string{"stage", "image", "variables", "dependencies", "script", "artifacts"}

func TestGitLabCI(t *testing.T) {
	files := renderWalkthrough(t, Options{Targets: []string{TargetGitLab}})
	var ci map[string]any
	if err := yaml.Unmarshal(files[FileGitLabCI], &ci); err != nil {
		t.Fatal(err)
	}
	eq(t, "top-level keys", sortedKeysAny(ci), []string{"build", "build-image", "deploy", "stages", "variables"})
	eq[any](t, "stages", ci["stages"], []any{"build", "image", "deploy"})
	eq[any](t, "variables", ci["variables"], map[string]any{"BUILD_NUMBER": "${CI_PIPELINE_IID}"})
	jobs := map[string]map[string]any{}
	for _, name := range []string{"build", "build-image", "deploy"} {
		job, ok := ci[name].(map[string]any)
		if !ok {
			t.Fatalf("job %s is %T, want a mapping", name, ci[name])
		}
		for k := range job {
			if !slices.Contains(gitlabKeys, k) {
				t.Errorf("job %s has key %s", name, k)
			}
		}
		jobs[name] = job
	}
	eq[any](t, "build stage", jobs["build"]["stage"], "build")
	eq[any](t, "build image", jobs["build"]["image"], map[string]any{"name": "mcr.microsoft.com/dotnet/sdk:6.0-alpine"})
	eq[any](t, "build script", jobs["build"]["script"], []any{walkthrough().Build.Command.Shell})
	eq[any](t, "build artifacts", jobs["build"]["artifacts"], map[string]any{"paths": []any{"out"}})

	executor := map[string]any{"name": "ghcr.io/kilnbuild/executor:debug", "entrypoint": []any{""}}
	img := jobs["build-image"]
	eq[any](t, "image stage", img["stage"], "image")
	eq[any](t, "image image", img["image"], executor)
	eq[any](t, "image dependencies", img["dependencies"], []any{"build"})
	eq[any](t, "deploy stage", jobs["deploy"]["stage"], "deploy")
	eq[any](t, "deploy image", jobs["deploy"]["image"], executor)
	eq[any](t, "deploy script", jobs["deploy"]["script"],
		[]any{`/kaniko/pipeline run -f kiln-pipeline.yaml --stage deploy --build-number "${BUILD_NUMBER}"`})

	// The image job's script, run as GitLab runs it: config.json from DOCKER_AUTH_CONFIG (the
	// destination is Docker Hub), then the executor with the cache flags.
	auth := `{"auths":{"https://index.docker.io/v1/":{"auth":"a2lsbjpzZWNyZXQ="}}}`
	env := []string{"CI_PROJECT_DIR=/builds/kiln/minimalapi", "BUILD_NUMBER=12", "REGISTRY_USER=kiln", "DOCKER_AUTH_CONFIG=" + auth}
	calls, dockerDir := runScriptFiles(t, joinScript(t, img["script"]), env)
	calls = withoutPwd(calls)
	i := *walkthrough().Image
	i.Destinations, i.CacheRepo = []string{"kiln/minimalapi:12"}, "kiln/kaniko-cache"
	eq(t, "executor calls", calls, [][]string{append(append([]string{"executor"},
		imagestage.ExecutorArgs(&i, "/builds/kiln/minimalapi")...), "--ignore-path=/busybox")})
	checkDockerConfig(t, dockerDir, auth)
}

// TestGitLabRegistry: pushing to GitLab's own registry, the image job writes config.json from
// the job's CI_REGISTRY credentials, GitLab's documented way.
func TestGitLabRegistry(t *testing.T) {
	p := walkthrough()
	p.Image.Destinations = []string{"${CI_REGISTRY_IMAGE}:${BUILD_NUMBER}"}
	p.Image.CacheRepo = "${CI_REGISTRY_IMAGE}/cache"
	files, err := RenderWith(p, Options{Targets: []string{TargetGitLab}})
	if err != nil {
		t.Fatal(err)
	}
	var ci struct {
		Image struct{ Script []string } `yaml:"build-image"`
	}
	if err := yaml.Unmarshal(files[FileGitLabCI], &ci); err != nil {
		t.Fatal(err)
	}
	env := []string{"CI_PROJECT_DIR=/builds/x", "BUILD_NUMBER=3", "CI_REGISTRY=registry.gitlab.example:5050",
		"CI_REGISTRY_IMAGE=registry.gitlab.example:5050/team/minimalapi", "CI_REGISTRY_USER=gitlab-ci-token", "CI_REGISTRY_PASSWORD=p@ss w:rd"}
	calls, dockerDir := runScriptFiles(t, strings.Join(ci.Image.Script, "\n"), env)
	calls = withoutPwd(calls)
	if len(calls) != 1 || !slices.Contains(calls[0], "--destination=registry.gitlab.example:5050/team/minimalapi:3") {
		t.Errorf("executor calls %q", calls)
	}
	want := `{"auths":{"registry.gitlab.example:5050":{"auth":"` +
		base64.StdEncoding.EncodeToString([]byte("gitlab-ci-token:p@ss w:rd")) + `"}}}`
	checkDockerConfig(t, dockerDir, want)
	if strings.Contains(string(files[FileGitLabCI]), "DOCKER_AUTH_CONFIG") {
		t.Error("pushing to GitLab's registry, .gitlab-ci.yml still asks for DOCKER_AUTH_CONFIG")
	}
}

func checkDockerConfig(t *testing.T, dir, want string) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("config.json %q: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("config.json = %s, want %s", got, want)
	}
}

func joinScript(t *testing.T, script any) string {
	t.Helper()
	lines, ok := script.([]any)
	if !ok {
		t.Fatalf("script is %T, want a list", script)
	}
	var ss []string
	for _, l := range lines {
		ss = append(ss, l.(string))
	}
	return strings.Join(ss, "\n")
}

func sortedKeysAny(m map[string]any) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
