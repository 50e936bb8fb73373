package deploystage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kilnbuild/kiln/pipeline/spec"
)

func TestReadManifestsDirectoryListsAndReplacements(t *testing.T) {
	d := &spec.Deploy{
		Manifests:    []string{"app"},
		Replacements: map[string]string{"<TAG>": "7", "<GREETING>": "hi"},
	}
	objs, err := ReadManifests("testdata", d)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		kind, name, ns string
		src            Source
	}
	wants := []want{
		{"Deployment", "hello", "", Source{"app/hello.yaml", 3, 1, 0}},
		{"Service", "hello", "", Source{"app/hello.yaml", 32, 2, 0}},
		{"ConfigMap", "hello-config", "", Source{"app/list.yml", 1, 1, 1}},
		{"ConfigMap", "hello-env", "other", Source{"app/list.yml", 1, 1, 2}},
		{"ConfigMap", "inherits-kind", "", Source{"app/list.yml", 18, 2, 1}}, // kind from ConfigMapList
	}
	if len(objs) != len(wants) {
		t.Fatalf("got %d objects, want %d: %v", len(objs), len(wants), objs)
	}
	for i, w := range wants {
		o := objs[i]
		if o.GetKind() != w.kind || o.GetName() != w.name || o.GetNamespace() != w.ns || o.Source != w.src {
			t.Errorf("object %d: %s %s/%s at %+v, want %s %s/%s at %+v", i, o.GetKind(), o.GetNamespace(), o.GetName(), o.Source, w.kind, w.ns, w.name, w.src)
		}
	}
	// Every occurrence of <TAG> is replaced, in the image and in the label.
	c, _, _ := unstructured.NestedSlice(objs[0].Object, "spec", "template", "spec", "containers")
	if img := c[0].(map[string]any)["image"]; img != "localhost:5000/hello:7" {
		t.Errorf("image %v, want localhost:5000/hello:7", img)
	}
	if v := objs[0].GetLabels()["version"]; v != "7" {
		t.Errorf("label version %q, want 7", v)
	}
	if g, _, _ := unstructured.NestedString(objs[3].Object, "data", "GREETING"); g != "hi" {
		t.Errorf("GREETING %q, want hi", g)
	}
	if objs[1].Source.String() != "app/hello.yaml:32 (document 2)" || objs[3].Source.String() != "app/list.yml:1 (document 1, item 2)" {
		t.Errorf("sources print as %q and %q", objs[1].Source, objs[3].Source)
	}
}

func TestReplacementFoundNowhereIsNamed(t *testing.T) {
	d := &spec.Deploy{
		Manifests:    []string{"app/hello.yaml"},
		Replacements: map[string]string{"<TAG>": "7", "<TGA>": "x", "${IMAGE}": "y"},
	}
	_, err := ReadManifests("testdata", d)
	wantErr(t, err, `deploy.replacements: "${IMAGE}", "<TGA>" found in no manifest (app/hello.yaml)`)
}

func TestReplacerLongestKeyFirstAndOnePass(t *testing.T) {
	r, err := newReplacer(map[string]string{"<TAG>": "<TAG>-x", "<TAG>-x": "y", "a": "b"})
	if err != nil {
		t.Fatal(err)
	}
	got := r.replace("<TAG>-x <TAG> a <TAG><TAG>")
	if want := "y <TAG>-x b <TAG>-x<TAG>-x"; got != want {
		t.Errorf("replace = %q, want %q", got, want)
	}
	if r.hits["<TAG>"] != 3 || r.hits["<TAG>-x"] != 1 || r.hits["a"] != 1 {
		t.Errorf("hits %v", r.hits)
	}
	if _, err := newReplacer(map[string]string{"": "x"}); err == nil {
		t.Error("an empty key was accepted")
	}
}

func TestReadManifestsErrors(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"bad/nokind.yaml", "bad/nokind.yaml:6 (document 2): object has no kind"},
		{"bad/duplicate.yaml", `bad/duplicate.yaml, document at line 6: yaml: unmarshal errors:`},
		{"bad/duplicate.yaml", `line 12: key "a" already set in map`},
		{"bad/syntax.yaml", "bad/syntax.yaml, document at line 6: yaml: line 10: did not find expected ',' or ']'"},
		{"bad/noname.yaml", "bad/noname.yaml:1 (document 1, item 2): ConfigMap has generateName but no name"},
		{"bad/scalar.yaml", "bad/scalar.yaml:1 (document 1): not a Kubernetes object"},
		{"bad/marker.yaml", `bad/marker.yaml:4: content after the document marker "---" is not supported`},
		{"bad/missing.yaml", "deploy.manifests[0]: stat testdata/bad/missing.yaml: no such file or directory"},
		{"app/README.txt", "app/README.txt:1 (document 1): not a Kubernetes object"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			_, err := ReadManifests("testdata", &spec.Deploy{Manifests: []string{tc.file}})
			wantErr(t, err, tc.want)
		})
	}
}

func TestReadManifestsMoreCases(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("crlf.yaml", "apiVersion: v1\r\nkind: ConfigMap\r\nmetadata:\r\n  name: a\r\n---\r\napiVersion: v1\r\nkind: ConfigMap\r\nmetadata:\r\n  name: b\r\n")
	write("comments.yaml", "# nothing here\n---\n---\n# nor here\n")
	write("noname.yaml", "apiVersion: v1\nkind: ConfigMap\n")
	write("noversion.json", `{"kind": "ConfigMap", "metadata": {"name": "x"}}`)
	os.Mkdir(filepath.Join(dir, "empty"), 0o755)

	objs, err := ReadManifests(dir, &spec.Deploy{Manifests: []string{"crlf.yaml"}})
	if err != nil || len(objs) != 2 || objs[1].GetName() != "b" || objs[1].Source.Line != 6 {
		t.Errorf("CRLF file: %v, %v", objs, err)
	}
	_, err = ReadManifests(dir, &spec.Deploy{Manifests: []string{"comments.yaml"}})
	wantErr(t, err, "deploy.manifests: comments.yaml hold no objects")
	_, err = ReadManifests(dir, &spec.Deploy{Manifests: []string{"noname.yaml"}})
	wantErr(t, err, "noname.yaml:1 (document 1): ConfigMap has no metadata.name")
	_, err = ReadManifests(dir, &spec.Deploy{Manifests: []string{filepath.Join(dir, "noversion.json")}})
	wantErr(t, err, "noversion.json:1 (document 1): object has no apiVersion")
	_, err = ReadManifests(dir, &spec.Deploy{Manifests: []string{"empty"}})
	wantErr(t, err, "deploy.manifests[0]: directory "+filepath.Join(dir, "empty")+" has no .yaml, .yml or .json files")
	_, err = ReadManifests(dir, &spec.Deploy{})
	wantErr(t, err, "deploy.manifests: no manifest files given")
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	t.Logf("error (as wanted): %v", err)
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q\ndoes not contain %q", err, want)
	}
}
