package render

import (
	"fmt"
	"maps"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kilnbuild/kiln/pipeline/spec"
)

// Targets: what Render renders for.
const (
	TargetJenkins = "jenkins" // Jenkinsfile, build-pod.yaml, jenkins.yaml, rbac.yaml, regcred.sh
	TargetGitLab  = "gitlab"  // .gitlab-ci.yml, rbac.yaml (the account its deploy job should use)
	TargetJob     = "job"     // job.yaml, rbac.yaml, regcred.sh
)

// Targets lists every target, as Render renders them when given none.
func Targets() []string { return []string{TargetJenkins, TargetGitLab, TargetJob} }

// Names of the files Render returns.
const (
	FileJenkinsfile = "Jenkinsfile"
	FileBuildPod    = "build-pod.yaml"
	FileGitLabCI    = ".gitlab-ci.yml"
	FileJob         = "job.yaml"
	FileRBAC        = "rbac.yaml"
	FileJenkins     = "jenkins.yaml"
	FileRegcred     = "regcred.sh"
)

// Options tune what RenderWith writes. The zero value is Render's behaviour.
type Options struct {
	// Targets are jenkins, gitlab and job; none means all of them.
	Targets []string
	// PipelineFile is the pipeline file's path in the repository, slash-separated and relative
	// to its root, as the rendered stages find it in their checkout. Its directory is the
	// pipeline's workspace: the build stage's /workspace, and what the image context and the
	// manifests are relative to. Default: the pipeline's File when it is a relative path below
	// the current directory (render runs at the repository's root), else File's base name.
	PipelineFile string
	// BuildNumber, when set, is the Job's BUILD_NUMBER and names it <name>-<build number>.
	// Unset, the Job has generateName <name>- (submit it with kubectl create) and BUILD_NUMBER
	// holds the placeholder ${BUILD_NUMBER}, for whoever submits it to fill in (envsubst).
	BuildNumber string
	// Vars are values of the pipeline's variables, for what must be decided when rendering:
	// the fields no CI system or Kubernetes expands (name, namespace, executorImage,
	// registrySecret, build.image, build.workdir, build.output), and in the Job, its env and
	// the defaults and alternatives (${VAR:-word}, ${VAR:+word}) that Kubernetes cannot
	// express. A variable without a value here counts as unset: its default applies, and in
	// the Job's env it is the placeholder ${VAR}, like BUILD_NUMBER.
	Vars map[string]string
}

// Render renders p, as written (its ${VAR} references unexpanded), for the targets (jenkins,
// gitlab, job; none means all) and returns file name -> content. See RenderWith.
func Render(p *spec.Pipeline, targets ...string) (map[string][]byte, error) {
	return RenderWith(p, Options{Targets: targets})
}

// RenderWith renders p for o.Targets and returns file name -> content; the names are the File
// constants. The output is deterministic: the same pipeline and options give the same bytes.
func RenderWith(p *spec.Pipeline, o Options) (map[string][]byte, error) {
	want, err := targetSet(o.Targets)
	if err != nil {
		return nil, err
	}
	r, err := newRenderer(p, o)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	add := func(name string, gen func() ([]byte, error)) error {
		b, err := gen()
		if err != nil {
			return fmt.Errorf("render %s: %w", name, err)
		}
		files[name] = b
		return nil
	}
	steps := []struct {
		when bool
		name string
		gen  func() ([]byte, error)
	}{
		{want[TargetJenkins], FileJenkinsfile, r.jenkinsfile},
		{want[TargetJenkins], FileBuildPod, r.buildPod},
		{want[TargetJenkins], FileJenkins, r.jenkinsServer},
		{want[TargetGitLab], FileGitLabCI, r.gitlabCI},
		{want[TargetJob], FileJob, r.job},
		{true, FileRBAC, func() ([]byte, error) { return r.rbac(want[TargetJenkins]) }},
		{want[TargetJenkins] || want[TargetJob], FileRegcred, r.regcred},
	}
	for _, s := range steps {
		if s.when {
			if err := add(s.name, s.gen); err != nil {
				return nil, err
			}
		}
	}
	return files, nil
}

// targetSet checks the targets and returns them as a set; none means all.
func targetSet(targets []string) (map[string]bool, error) {
	if len(targets) == 0 {
		targets = Targets()
	}
	set := map[string]bool{}
	for _, t := range targets {
		switch t {
		case TargetJenkins, TargetGitLab, TargetJob:
			set[t] = true
		default:
			return nil, fmt.Errorf("unknown render target %q: want one of %s", t, strings.Join(Targets(), ", "))
		}
	}
	return set, nil
}

// renderer holds the pipeline and what every file derives from it.
type renderer struct {
	// p is the pipeline with the values no CI system or Kubernetes expands (name, namespace,
	// images, Secret, working directory, output) decided; the others keep their references.
	p *spec.Pipeline
	// raw is the pipeline as given.
	raw  *spec.Pipeline
	o    Options
	file string // the pipeline file, relative to the repository root
	dir  string // its directory, relative to the repository root ("." at the root)
	// known are the values o gives for variables, BUILD_NUMBER's included.
	known map[string]string
	// env are the variables a run of the pipeline needs in its environment, sorted: those it
	// refers to without a default (or in a default that applies), those known, BUILD_NUMBER.
	env []string
}

func newRenderer(p *spec.Pipeline, o Options) (*renderer, error) {
	r := &renderer{raw: p, o: o, known: maps.Clone(o.Vars)}
	if o.BuildNumber != "" {
		if r.known == nil {
			r.known = map[string]string{}
		}
		r.known["BUILD_NUMBER"] = o.BuildNumber
	}
	var err error
	if r.file, err = pipelineFile(p, o.PipelineFile); err != nil {
		return nil, err
	}
	r.dir = path.Dir(r.file)
	if r.p, err = r.decide(p); err != nil {
		return nil, err
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	names := map[string]bool{"BUILD_NUMBER": true}
	for _, s := range pipelineStrings(p) {
		plainRefs(s, r.known, names)
	}
	for _, v := range p.Variables() {
		if _, ok := r.known[v]; ok {
			names[v] = true
		}
	}
	r.env = slices.Sorted(maps.Keys(names))
	return r, nil
}

// pipelineFile is the pipeline file's path in the repository: given, else p.File when it is a
// relative path below the current directory (render runs at the repository's root), else
// p.File's base name, else the default name.
func pipelineFile(p *spec.Pipeline, given string) (string, error) {
	f := given
	switch {
	case f != "":
	case p.File != "" && filepath.IsLocal(p.File):
		f = filepath.ToSlash(p.File)
	case p.File != "":
		f = filepath.Base(p.File)
	default:
		f = spec.DefaultFileName
	}
	if !filepath.IsLocal(filepath.FromSlash(f)) {
		return "", fmt.Errorf("pipeline file %q: want a path relative to the repository root", f)
	}
	return path.Clean(f), nil
}

// decide returns a copy of p with the values that neither the CI system nor Kubernetes
// expands decided now, from the known values and the defaults.
func (r *renderer) decide(p *spec.Pipeline) (*spec.Pipeline, error) {
	q := *p
	fields := []struct {
		key string
		s   *string
	}{{"name", &q.Name}, {"namespace", &q.Namespace}, {"executorImage", &q.ExecutorImage}, {"registrySecret", &q.RegistrySecret}}
	if p.Build != nil {
		b := *p.Build
		q.Build = &b
		fields = append(fields, []struct {
			key string
			s   *string
		}{{"build.image", &b.Image}, {"build.workdir", &b.Workdir}, {"build.output", &b.Output}}...)
	}
	for _, f := range fields {
		v, missing := resolve(*f.s, r.known)
		if len(missing) > 0 {
			return nil, r.errAt(f.key, "${%s} is not set: the CI system and Kubernetes do not expand %s, so it is decided when rendering (give --var %s=...)",
				missing[0], f.key, missing[0])
		}
		*f.s = v
	}
	return &q, nil
}

// check rejects a pipeline that cannot name its objects or has nothing to run.
func (r *renderer) check() error {
	p := r.p
	if p.Name == "" {
		return r.errAt("name", "a name is required: the rendered objects are named after it")
	}
	// <name>-pipeline and <name>-<build number> must stay valid object and label values.
	if errs := validation.IsDNS1123Label(p.Name); len(errs) > 0 || len(p.Name) > 40 {
		return r.errAt("name", "%q cannot name Kubernetes objects: want at most 40 lowercase letters, digits and '-', starting and ending alphanumeric", p.Name)
	}
	if p.Namespace != "" {
		if errs := validation.IsDNS1123Label(p.Namespace); len(errs) > 0 {
			return r.errAt("namespace", "%q is not a valid namespace: %s", p.Namespace, strings.Join(errs, "; "))
		}
	}
	if p.Build == nil && p.Image == nil && p.Deploy == nil {
		return r.errAt("", "no stage to render: want at least one of build, image, deploy")
	}
	return nil
}

// errAt is an error naming the pipeline file, the key's line and the key, as the pipeline's
// parser reports them.
func (r *renderer) errAt(key, format string, args ...any) error {
	file := r.raw.File
	if file == "" {
		file = r.file
	}
	return &spec.Error{File: file, Line: r.raw.Line(key), Path: key, Err: fmt.Errorf(format, args...)}
}

// inWorkspace is a path of the pipeline's workspace (the build stage's /workspace and what the
// pipeline's relative paths start from) as seen in a CI job whose checkout is at root.
func (r *renderer) inWorkspace(root, rel string) string {
	return path.Join(root, r.dir, rel)
}

// workdir is the build stage's working directory in a CI job whose checkout is at root:
// the stage's workdir (default /workspace) with /workspace mapped to the pipeline's directory.
func (r *renderer) workdir(root string) string {
	wd := spec.DefaultWorkdir
	if r.p.Build != nil {
		wd = r.p.Build.WorkdirOrDefault()
	}
	if rel, ok := strings.CutPrefix(path.Clean(wd), spec.DefaultWorkdir); ok && (rel == "" || rel[0] == '/') {
		return r.inWorkspace(root, strings.TrimPrefix(rel, "/"))
	}
	return wd
}

// executorImage is the Kiln executor image (the :debug variant, with busybox) the pods run.
func (r *renderer) executorImage() string { return r.p.ExecutorImageOrDefault() }

// registrySecret is the docker-registry Secret mounted at /kaniko/.docker.
func (r *renderer) registrySecret() string { return r.p.RegistrySecretOrDefault() }

// deployCommand is the deploy stage as the executor image runs it: the pipeline binary, on the
// pipeline file at file, with the build number buildNumber. A namespace that was decided when
// rendering is passed on, so that the deploy goes where the rendered RBAC allows it.
func (r *renderer) deployCommand(file, buildNumber string) []string {
	cmd := []string{"/kaniko/pipeline", "run", "-f", file, "--stage", "deploy", "--build-number", buildNumber}
	if r.p.Namespace != r.raw.Namespace {
		cmd = append(cmd, "--namespace", r.p.Namespace)
	}
	return cmd
}

// buildScript is the build stage as lines of a shell script run in the stage image, in the
// checkout at root: its env exported, a cd to its working directory unless the job starts
// there, then its command.
func (r *renderer) buildScript(root string, startsInRoot bool) []string {
	b := r.p.Build
	var lines []string
	for _, k := range sortedKeys(b.Env) {
		lines = append(lines, "export "+k+"="+shellWord(b.Env[k]))
	}
	if wd := r.workdir(root); !startsInRoot || wd != path.Clean(root) {
		lines = append(lines, "cd "+shellWord(wd))
	}
	if b.Command.Exec != nil {
		return append(lines, shellJoin(b.Command.Exec))
	}
	return append(lines, shellLine(b.Command.Shell))
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
