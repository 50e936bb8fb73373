package render

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/pipeline/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata from the output")

// walkthrough is the pipeline of the original walkthrough, its mistakes fixed: the .NET minimal
// API compiled in the SDK image, its image pushed to Docker Hub with the layer cache, and
// minimalapi.yaml deployed with <TAG> replaced by the build number.
func walkthrough() *spec.Pipeline {
	return &spec.Pipeline{
		Name:   "minimalapi",
		Source: &spec.Source{Git: "https://github.com/kilnbuild/minimalapi.git", Ref: "main"},
		Build: &spec.Build{
			Image: "mcr.microsoft.com/dotnet/sdk:6.0-alpine",
			Command: spec.Command{Shell: "dotnet publish MinimalApi/MinimalApi.csproj -p:PublishSingleFile=true " +
				"-r linux-musl-x64 -c Release --self-contained true -p:EnableCompressionInSingleFile=true " +
				"-p:PublishTrimmed=true -o out"},
			Output: "out",
		},
		Image: &spec.Image{
			Destinations:    []string{"${REGISTRY_USER}/minimalapi:${BUILD_NUMBER}"},
			Cache:           true,
			CacheCopyLayers: true,
			CacheRepo:       "${REGISTRY_USER}/kaniko-cache",
		},
		Deploy: &spec.Deploy{
			Manifests:    []string{"minimalapi.yaml"},
			Replacements: map[string]string{"<TAG>": "${BUILD_NUMBER}"},
		},
		File:  "kiln-pipeline.yaml",
		Lines: map[string]int{"name": 1, "source": 3},
	}
}

// allFiles are the files Render writes for every target.
var allFiles = []string{FileGitLabCI, FileJenkinsfile, FileBuildPod, FileJenkins, FileJob, FileRBAC, FileRegcred}

func TestGolden(t *testing.T) {
	files, err := Render(walkthrough())
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "testdata/walkthrough", files)
}

// checkGolden compares files with the golden directory dir, or rewrites it with -update.
func checkGolden(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	if *update {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := Write(dir, files); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("%v (run go test ./pipeline/render -run %s -update to write it)", err, t.Name())
	}
	var golden []string
	for _, e := range entries {
		golden = append(golden, e.Name())
	}
	if got := sortedNames(files); !reflect.DeepEqual(got, golden) {
		t.Errorf("rendered files %q, golden %q", got, golden)
	}
	for name, got := range files {
		want, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue // reported above
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s (run with -update to accept):\n%s", name, dir, lineDiff(string(want), string(got)))
		}
	}
}

// lineDiff shows the first differing line of two texts.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n  golden: %s\n  output: %s", i+1, wl, gl)
		}
	}
	return "(same lines)"
}

func sortedNames(files map[string][]byte) []string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func TestTargets(t *testing.T) {
	for _, tc := range []struct {
		targets []string
		want    []string
	}{
		{nil, allFiles},
		{[]string{TargetJenkins}, []string{FileJenkinsfile, FileBuildPod, FileJenkins, FileRBAC, FileRegcred}},
		{[]string{TargetGitLab}, []string{FileGitLabCI, FileRBAC}},
		{[]string{TargetJob}, []string{FileJob, FileRBAC, FileRegcred}},
		{[]string{TargetJob, TargetGitLab, TargetJob}, []string{FileGitLabCI, FileJob, FileRBAC, FileRegcred}},
	} {
		files, err := Render(walkthrough(), tc.targets...)
		if err != nil {
			t.Fatalf("targets %q: %v", tc.targets, err)
		}
		want := slices.Clone(tc.want)
		sort.Strings(want)
		if got := sortedNames(files); !reflect.DeepEqual(got, want) {
			t.Errorf("targets %q: files %q, want %q", tc.targets, got, want)
		}
	}
	// Only the jenkins target brings the Jenkins account into rbac.yaml.
	for _, tc := range []struct {
		target  string
		jenkins bool
	}{{TargetJenkins, true}, {TargetJob, false}, {TargetGitLab, false}} {
		files, err := Render(walkthrough(), tc.target)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(files[FileRBAC]), "name: "+JenkinsName+"\n"); got != tc.jenkins {
			t.Errorf("target %s: rbac.yaml has the Jenkins account: %v, want %v", tc.target, got, tc.jenkins)
		}
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func(p *spec.Pipeline)
		targets []string
		want    string
	}{
		{"unknown target", func(*spec.Pipeline) {}, []string{"tekton"}, `unknown render target "tekton": want one of jenkins, gitlab, job`},
		{"job without source", func(p *spec.Pipeline) { p.Source = nil }, []string{TargetJob},
			"render job.yaml: kiln-pipeline.yaml:3: source: the job target needs source.git"},
		{"other targets need no source", func(p *spec.Pipeline) { p.Source = nil }, []string{TargetJenkins, TargetGitLab}, ""},
		{"no name", func(p *spec.Pipeline) { p.Name = "" }, nil, "kiln-pipeline.yaml:1: name: a name is required"},
		{"bad name", func(p *spec.Pipeline) { p.Name = "Minimal_API" }, nil, `kiln-pipeline.yaml:1: name: "Minimal_API" cannot name Kubernetes objects`},
		{"bad namespace", func(p *spec.Pipeline) { p.Namespace = "a.b" }, nil, `kiln-pipeline.yaml: namespace: "a.b" is not a valid namespace`},
		{"no stage", func(p *spec.Pipeline) { p.Build, p.Image, p.Deploy = nil, nil, nil }, nil, "kiln-pipeline.yaml: no stage to render"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := walkthrough()
			tc.change(p)
			_, err := Render(p, tc.targets...)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("no error, want %q", tc.want)
			case tc.want != "" && !strings.HasPrefix(err.Error(), tc.want):
				t.Fatalf("error %q, want it to start with %q", err, tc.want)
			}
		})
	}
	if _, err := RenderWith(walkthrough(), Options{PipelineFile: "../kiln-pipeline.yaml"}); err == nil ||
		!strings.Contains(err.Error(), `pipeline file "../kiln-pipeline.yaml"`) {
		t.Errorf("a pipeline file outside the repository: error %v", err)
	}
}

// TestDeterministic renders a pipeline with several map entries many times: Go's map order must
// never reach the output.
func TestDeterministic(t *testing.T) {
	p := walkthrough()
	p.Build.Env = map[string]string{"Z": "1", "A": "${X}", "M": "two words", "B": "3"}
	p.Image.BuildArgs = map[string]string{"V2": "b", "V1": "a", "V3": "${Y}"}
	p.Deploy.Replacements["<REG>"] = "${REGISTRY_USER}"
	first, err := Render(p)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, err := Render(p)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(first, again) {
			t.Fatal("two renders of one pipeline differ")
		}
	}
}
