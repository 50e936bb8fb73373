package render

import (
	"bytes"
	"fmt"
	"path"
	"strings"

	"gopkg.in/yaml.v3"
)

// gitlabWorkspace is where a GitLab job finds the checkout; its script starts there.
const gitlabWorkspace = "${CI_PROJECT_DIR}"

// GitLab job names. A job cannot be called "image": that top-level key is GitLab's default
// image.
const (
	gitlabBuildJob  = "build"
	gitlabImageJob  = "build-image"
	gitlabDeployJob = "deploy"
)

// gitlabCI is .gitlab-ci.yml, its keys in the order GitLab's documentation writes them.
type gitlabCI struct {
	Stages    []string          `yaml:"stages"`
	Variables map[string]string `yaml:"variables,omitempty"`
	Build     *gitlabJob        `yaml:"build,omitempty"`
	Image     *gitlabJob        `yaml:"build-image,omitempty"`
	Deploy    *gitlabJob        `yaml:"deploy,omitempty"`
}

type gitlabJob struct {
	Stage        string            `yaml:"stage"`
	Image        gitlabImage       `yaml:"image"`
	Variables    map[string]string `yaml:"variables,omitempty"`
	Dependencies []string          `yaml:"dependencies,omitempty"`
	Script       []string          `yaml:"script"`
	Artifacts    *gitlabArtifacts  `yaml:"artifacts,omitempty"`
}

type gitlabImage struct {
	Name string `yaml:"name"`
	// Entrypoint [""] clears the executor image's entrypoint, so the runner's shell runs the script.
	Entrypoint []string `yaml:"entrypoint,omitempty"`
}

type gitlabArtifacts struct {
	Paths []string `yaml:"paths"`
}

// gitlabCI renders GitLab's documented Kaniko pattern: the build job's output directory goes
// to the image job as artifacts; the image job, in the executor image, writes
// /kaniko/.docker/config.json and runs the executor with the pipeline's flags; the deploy job
// runs the pipeline binary of the same image.
func (r *renderer) gitlabCI() ([]byte, error) {
	ci := gitlabCI{Variables: r.gitlabVariables()}
	if b := r.p.Build; b != nil {
		ci.Stages = append(ci.Stages, "build")
		ci.Build = &gitlabJob{
			Stage:  "build",
			Image:  gitlabImage{Name: b.Image},
			Script: r.buildScript(gitlabWorkspace, true),
		}
		if b.Output != "" {
			ci.Build.Artifacts = &gitlabArtifacts{Paths: []string{path.Join(r.dir, b.Output)}}
		}
	}
	if r.p.Image != nil {
		ci.Stages = append(ci.Stages, "image")
		ci.Image = &gitlabJob{
			Stage:  "image",
			Image:  r.gitlabExecutorImage(),
			Script: append(r.gitlabDockerConfig(), shellJoin(r.shellExecutorArgs(gitlabWorkspace))),
		}
		if ci.Build != nil {
			ci.Image.Dependencies = []string{gitlabBuildJob}
		}
	}
	if r.p.Deploy != nil {
		ci.Stages = append(ci.Stages, "deploy")
		ci.Deploy = &gitlabJob{
			Stage:  "deploy",
			Image:  r.gitlabExecutorImage(),
			Script: []string{shellJoin(r.deployCommand(r.file, "${BUILD_NUMBER}"))},
		}
	}
	var buf bytes.Buffer
	buf.WriteString(r.gitlabHeader())
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(ci); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (r *renderer) gitlabExecutorImage() gitlabImage {
	return gitlabImage{Name: r.executorImage(), Entrypoint: []string{""}}
}

// gitlabDockerConfig are the script lines that write the executor's registry credentials:
// from GitLab's own CI_REGISTRY_* variables when the image goes to GitLab's registry, from a
// DOCKER_AUTH_CONFIG variable (a Docker config.json) otherwise.
func (r *renderer) gitlabDockerConfig() []string {
	lines := []string{"mkdir -p " + dockerConfigDir}
	if r.pushesToGitLab() {
		return append(lines, `echo "{\"auths\":{\"${CI_REGISTRY}\":{\"auth\":\"$(printf '%s:%s' "${CI_REGISTRY_USER}" "${CI_REGISTRY_PASSWORD}" | base64 | tr -d '\n')\"}}}" > `+dockerConfigDir+"/config.json")
	}
	return append(lines, `echo "${DOCKER_AUTH_CONFIG}" > `+dockerConfigDir+"/config.json")
}

// pushesToGitLab reports whether every destination is in GitLab's registry: named through
// CI_REGISTRY or CI_REGISTRY_IMAGE, or on registry.gitlab.com.
func (r *renderer) pushesToGitLab() bool {
	if r.p.Image == nil || len(r.p.Image.Destinations) == 0 {
		return false
	}
	for _, d := range r.p.Image.Destinations {
		if !strings.HasPrefix(d, "${CI_REGISTRY") && registryHost(d) != "registry.gitlab.com" {
			return false
		}
	}
	return true
}

// gitlabVariables are the pipeline's global variables: BUILD_NUMBER from GitLab's number of
// the pipeline in the project, and the values given when rendering (a $ in them escaped as $$,
// which GitLab would expand).
func (r *renderer) gitlabVariables() map[string]string {
	vars := map[string]string{"BUILD_NUMBER": "${CI_PIPELINE_IID}"}
	for _, v := range r.env {
		if val, ok := r.known[v]; ok && v != "BUILD_NUMBER" {
			vars[v] = strings.ReplaceAll(val, "$", "$$")
		}
	}
	return vars
}

// gitlabHeader says which CI/CD variables the project must define.
func (r *renderer) gitlabHeader() string {
	lines := []string{fmt.Sprintf("The CI pipeline of %s, rendered by kiln from %s.", r.p.Name, r.file)}
	var need []string
	for _, v := range r.env {
		if _, known := r.known[v]; !known && v != "BUILD_NUMBER" && !strings.HasPrefix(v, "CI_") {
			need = append(need, v)
		}
	}
	if r.p.Image != nil && !r.pushesToGitLab() {
		need = append(need, "DOCKER_AUTH_CONFIG (a Docker config.json with the registry's credentials)")
	}
	if r.p.Deploy != nil {
		need = append(need, "KUBECONFIG (a file variable: the pipeline's service account of rbac.yaml, namespace "+Namespace(r.p)+")")
	}
	if len(need) > 0 {
		lines = append(lines, "Set these CI/CD variables in the project's settings:")
		for _, n := range need {
			lines = append(lines, "  "+n)
		}
	}
	return comment(lines...)
}
