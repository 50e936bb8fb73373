package spec

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.err with the errors the parser gives now")

// testVars are the variables every test file is expanded with.
func testVars() map[string]string {
	return map[string]string{
		"BUILD_NUMBER": "7", "REGISTRY_USER": "kiln", "REGISTRY": "registry.example.com:5000/team",
		"OUT_DIR": "/abs/out", "EMPTY": "",
	}
}

func loadExpanded(path string) (*Pipeline, error) {
	p, err := Load(path)
	if err != nil {
		return nil, err
	}
	return p.Expand(Lookup(testVars(), nil))
}

func testFiles(t testing.TB, dir string) []string {
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files in testdata/%s: %v", dir, err)
	}
	return files
}

// TestBadFiles compares the errors of every bad file, from Parse or else from Expand, with its
// golden .err file (go test -run TestBadFiles -update rewrites them).
func TestBadFiles(t *testing.T) {
	for _, file := range testFiles(t, "bad") {
		t.Run(filepath.Base(file), func(t *testing.T) {
			_, err := loadExpanded(file)
			if err == nil {
				t.Fatal("no error")
			}
			checkNamesFile(t, err, file)
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

// checkNamesFile checks that err is *Errors of file, one a line, in line order.
func checkNamesFile(t testing.TB, err error, file string) {
	t.Helper()
	last := 0
	for _, e := range unwrapAll(err) {
		var se *Error
		if !errors.As(e, &se) || se.File != file {
			t.Errorf("error %q is not an *Error of %s", e, file)
			continue
		}
		if !strings.HasPrefix(e.Error(), file+":") || strings.Contains(e.Error(), "\n") {
			t.Errorf("error %q does not start with %s: or spans lines", e, file)
		}
		if se.Line < last {
			t.Errorf("error %q out of line order (after line %d)", e, last)
		}
		last = se.Line
	}
}

func TestGoodFiles(t *testing.T) {
	for _, file := range testFiles(t, "good") {
		t.Run(filepath.Base(file), func(t *testing.T) {
			p, err := Load(file)
			if err != nil {
				t.Fatal(err)
			}
			if p.File != file || p.Name == "" {
				t.Errorf("File %q, Name %q", p.File, p.Name)
			}
			if _, err := p.Expand(Lookup(testVars(), nil)); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestMinimalAPI(t *testing.T) {
	p, err := loadExpanded("testdata/good/minimalapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	wait := true
	want := &Pipeline{
		Name: "minimalapi",
		Build: &Build{
			Image: "mcr.microsoft.com/dotnet/sdk:6.0-alpine",
			Command: Command{Shell: "dotnet publish MinimalApi/MinimalApi.csproj -p:PublishSingleFile=true " +
				"-r linux-musl-x64 -c Release --self-contained true -p:EnableCompressionInSingleFile=true " +
				"-p:PublishTrimmed=true -o out"},
			Output: "out",
		},
		Image: &Image{Destinations: []string{"kiln/minimalapi:7"}, Cache: true, CacheCopyLayers: true,
			CacheRepo: "kiln/kaniko-cache"},
		Deploy: &Deploy{Manifests: []string{"minimalapi.yaml"}, Replacements: map[string]string{"<TAG>": "7"},
			Wait: &wait, Timeout: Duration{5 * time.Minute}},
		File: "testdata/good/minimalapi.yaml",
	}
	p.Lines = nil
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got\n%+v\nwant\n%+v", p, want)
	}
	if got := p.Build.Command.Args(); len(got) != 3 || got[0] != "/bin/sh" || got[2] != want.Build.Command.Shell {
		t.Errorf("Args() = %q", got)
	}
}

func TestFullFile(t *testing.T) {
	p, err := Load("testdata/good/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.Build.Command.Exec, []string{"go", "build", "-o", "out/hello", "-ldflags", "", "."}; !reflect.DeepEqual(got, want) {
		t.Errorf("exec command %q, want %q", got, want)
	}
	if got := p.Build.Env; got["CGO_ENABLED"] != "0" || got["VERBOSE"] != "true" || got["PRICE"] != "$$5" {
		t.Errorf("env %q: numbers and booleans should stay as written", got)
	}
	if p.Image.Cache || p.Deploy.ShouldWait() || p.Deploy.Timeout.Duration != 90*time.Minute {
		t.Errorf("cache %v, wait %v, timeout %v", p.Image.Cache, p.Deploy.ShouldWait(), p.Deploy.Timeout)
	}
	lines := map[string]int{
		"name": 2, "source.ref": 6, "build.command": 11, "build.command[5]": 11, "build.env.GOFLAGS": 16,
		"image.destination": 22, "image.destination[1]": 24, "image.flags[2]": 35,
		"deploy.replacements.<TAG>": 40, "deploy.timeout": 43, "deploy.manifests[0]": 37,
	}
	for path, want := range lines {
		if got := p.Line(path); got != want {
			t.Errorf("Line(%q) = %d, want %d", path, got, want)
		}
	}
	x, err := p.Expand(Lookup(testVars(), nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := x.Build.Env["PRICE"]; got != "$5" {
		t.Errorf("$$5 expanded to %q", got)
	}
	if got := x.Image.BuildArgs["BASE_IMAGE"]; got != "registry.example.com:5000/team/busybox:1.36" {
		t.Errorf("BASE_IMAGE %q", got)
	}
}

func TestErrorfNamesLine(t *testing.T) {
	p, err := Load("testdata/good/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cause := os.ErrNotExist
	err = p.Errorf("deploy.manifests[0]", "%s: %w", p.Deploy.Manifests[0], cause)
	want := "testdata/good/full.yaml:37: deploy.manifests[0]: examples/hello/k8s/hello.yaml: file does not exist"
	if err.Error() != want || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Errorf = %q, want %q wrapping ErrNotExist", err, want)
	}
	// A path without a line of its own takes its parent's.
	if got := p.Errorf("build.env.NEW", "x").(*Error).Line; got != 14 {
		t.Errorf("line of build.env.NEW = %d, want 14 (build.env)", got)
	}
}

func TestDefaults(t *testing.T) {
	p := &Pipeline{File: "dir/kiln-pipeline.yaml"}
	b, i, d := &Build{}, &Image{}, &Deploy{}
	got := []any{p.ExecutorImageOrDefault(), p.RegistrySecretOrDefault(), p.Dir(), b.WorkdirOrDefault(),
		i.DockerfileOrDefault(), i.ContextOrDefault(), d.TimeoutOrDefault(), d.ShouldWait()}
	want := []any{DefaultExecutorImage, DefaultRegistrySecret, "dir", DefaultWorkdir, "Dockerfile", ".", DefaultTimeout, true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults %v, want %v", got, want)
	}
	no := false
	p = &Pipeline{ExecutorImage: "e", RegistrySecret: "r"}
	b, i, d = &Build{Workdir: "/src"}, &Image{Dockerfile: "D", Context: "c"}, &Deploy{Timeout: Duration{time.Second}, Wait: &no}
	got = []any{p.ExecutorImageOrDefault(), p.RegistrySecretOrDefault(), b.WorkdirOrDefault(),
		i.DockerfileOrDefault(), i.ContextOrDefault(), d.TimeoutOrDefault(), d.ShouldWait()}
	want = []any{"e", "r", "/src", "D", "c", time.Second, false}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("set values %v, want %v", got, want)
	}
}

// docExample is the annotated example in doc.go.
func docExample(t testing.TB) []byte {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(src), "\n") {
		code, ok := strings.CutPrefix(line, "//\t")
		switch {
		case ok && (len(out) > 0 || strings.HasPrefix(code, "# yaml-language-server")):
			out = append(out, code)
		case line == "//" && len(out) > 0:
			out = append(out, "")
		case len(out) > 0:
			return []byte(strings.Join(out, "\n"))
		}
	}
	t.Fatal("no example in doc.go")
	return nil
}

// TestDocExample checks that the documented file is good, and that the errors doc.go shows
// are those a user gets.
func TestDocExample(t *testing.T) {
	example := docExample(t)
	p, err := Parse(DefaultFileName, example)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Expand(Lookup(testVars(), nil)); err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(example), "cacheRepo:", "cacherepo:", 1)
	bad = strings.Replace(bad, "timeout: 5m", "timeout: 5 minutes", 1)
	_, err = Parse(DefaultFileName, []byte(bad))
	doc, _ := os.ReadFile("doc.go")
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.Contains(string(doc), "//\t"+line+"\n") {
			t.Errorf("doc.go does not show the error %q", line)
		}
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// unwrapAll is the errors joined in err (err itself if it is not a join).
func unwrapAll(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
