package integration

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	yamlv3 "gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
)

// TestPipelineRender runs `pipeline render` on both examples: every file is written (and
// nothing else), each Kubernetes file holds the kinds it should as objects client-go decodes,
// `--for job` writes only what the Job needs, and a bad target fails before writing anything.
func TestPipelineRender(t *testing.T) {
	root := repoRoot(t)
	c := newCLI(t, root)
	all := []string{".gitlab-ci.yml", "Jenkinsfile", "build-pod.yaml", "jenkins.yaml", "job.yaml", "rbac.yaml", "regcred.sh"}
	kinds := map[string][]string{
		"build-pod.yaml": {"Pod"},
		"jenkins.yaml":   {"PersistentVolumeClaim", "Deployment", "Service"},
		"job.yaml":       {"Job"},
		"rbac.yaml":      {"ServiceAccount", "Role", "RoleBinding", "ServiceAccount", "Role", "RoleBinding"},
	}
	for _, ex := range []struct {
		name string
		vars []string
	}{
		{"minimalapi", nil},
		// build.image is ${GO_IMAGE}, which no CI system expands: it is decided when rendering.
		{"hello", []string{"--var", "GO_IMAGE=golang:1.26"}},
	} {
		file := "examples/" + ex.name + "/kiln-pipeline.yaml"
		t.Run(ex.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			res := c.want(t, 0, append([]string{"render", "-f", file, "-o", out}, ex.vars...)...)
			checkRendered(t, out, all)
			for _, name := range all {
				wantAll(t, "render's output", res.stdout, "wrote "+filepath.Join(out, name))
			}
			for name, want := range kinds {
				if got := decodeKinds(t, filepath.Join(out, name)); !slices.Equal(got, want) {
					t.Errorf("%s holds %v, want %v", name, got, want)
				}
			}
			var ci struct{ Stages []string }
			if err := yamlv3.Unmarshal([]byte(readFile(t, filepath.Join(out, ".gitlab-ci.yml"))), &ci); err != nil {
				t.Errorf(".gitlab-ci.yml: %v", err)
			} else if !slices.Equal(ci.Stages, []string{"build", "image", "deploy"}) {
				t.Errorf(".gitlab-ci.yml stages %v, want build, image, deploy", ci.Stages)
			}
			wantAll(t, "Jenkinsfile", readFile(t, filepath.Join(out, "Jenkinsfile")), "yamlFile 'build-pod.yaml'")
			wantAll(t, "regcred.sh", readFile(t, filepath.Join(out, "regcred.sh")), "kubectl create secret docker-registry regcred")
			if fi, err := os.Stat(filepath.Join(out, "regcred.sh")); err != nil || fi.Mode()&0o100 == 0 {
				t.Errorf("regcred.sh is not executable: %v", err)
			}

			job := filepath.Join(t.TempDir(), "job")
			c.want(t, 0, append([]string{"render", "-f", file, "-o", job, "--for", "job"}, ex.vars...)...)
			checkRendered(t, job, []string{"job.yaml", "rbac.yaml", "regcred.sh"})
			if got := decodeKinds(t, filepath.Join(job, "rbac.yaml")); !slices.Equal(got, []string{"ServiceAccount", "Role", "RoleBinding"}) {
				t.Errorf("rbac.yaml for a Job holds %v, want only the pipeline's account", got)
			}
		})
	}

	t.Run("bad target", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out")
		res := c.want(t, 2, "render", "-f", "examples/minimalapi/kiln-pipeline.yaml", "-o", out, "--for", "jenkins,circleci")
		wantAll(t, "the error", res.stderr, `unknown render target "circleci"`, "jenkins, gitlab, job")
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("a failed render created %s (%v)", out, err)
		}
	})
	t.Run("usage", func(t *testing.T) {
		wantAll(t, "the error", c.want(t, 2, "render", "-f", "examples/minimalapi/kiln-pipeline.yaml").stderr, "render needs -o DIR")
		wantAll(t, "the error", c.want(t, 2, "render", "-f", "examples/hello/kiln-pipeline.yaml", "-o", t.TempDir()).stderr,
			"build.image: ${GO_IMAGE} is not set", "--var GO_IMAGE=")
	})
}

// checkRendered fails the test unless dir holds exactly the files names.
func checkRendered(t *testing.T, dir string, names []string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	want := slices.Clone(names)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s holds %v, want %v", dir, got, want)
	}
}

// decodeKinds decodes every document of a YAML file strictly (an unknown or duplicate field is
// an error) with client-go's scheme and returns their kinds.
func decodeKinds(t *testing.T, path string) []string {
	t.Helper()
	decoder := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	r := yaml.NewYAMLReader(bufio.NewReader(strings.NewReader(readFile(t, path))))
	var kinds []string
	for {
		doc, err := r.Read()
		if err == io.EOF {
			return kinds
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if onlyComments(doc) {
			continue
		}
		_, gvk, err := decoder.Decode(doc, nil, nil)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		kinds = append(kinds, gvk.Kind)
	}
}

// onlyComments tells a YAML document with nothing but comments and blank lines.
func onlyComments(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}
