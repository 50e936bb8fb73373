package render

import (
	"fmt"
	"strings"
)

// jenkinsWorkspace is where an sh step in a Jenkins agent pod finds the checkout; sh steps
// start there.
const jenkinsWorkspace = "${WORKSPACE}"

// jenkinsBuiltin reports whether Jenkins sets the variable in every build; the others the
// pipeline needs become build parameters.
func jenkinsBuiltin(name string) bool {
	switch name {
	case "BUILD_NUMBER", "BUILD_ID", "BUILD_TAG", "BUILD_URL", "JOB_NAME", "JOB_BASE_NAME",
		"WORKSPACE", "JENKINS_URL", "NODE_NAME", "EXECUTOR_NUMBER", "GIT_COMMIT", "GIT_BRANCH",
		"BRANCH_NAME", "CHANGE_ID", "TAG_NAME":
		return true
	}
	return false
}

// jenkinsfile is a declarative pipeline on a Kubernetes agent (build-pod.yaml) with the
// stages Build, Image and Deploy, each in the container of build-pod.yaml that runs it. Every
// sh script is a non-interpolating Groovy string: ${VAR} in it is the shell's, expanded from
// the build's environment (BUILD_NUMBER is Jenkins', the others build parameters).
func (r *renderer) jenkinsfile() ([]byte, error) {
	w := &groovyWriter{}
	w.line("// The CI pipeline of %s, rendered by kiln from %s.", r.p.Name, r.file)
	w.line("// Jenkins needs the Kubernetes plugin with a cloud for the namespace %s (jenkins.yaml,", Namespace(r.p))
	w.line("// rbac.yaml) and the registry Secret %s (regcred.sh). build-pod.yaml is read from the", r.registrySecret())
	w.line("// repository, next to this file.")
	w.open("pipeline")
	w.open("agent")
	w.open("kubernetes")
	w.line("yamlFile %s", groovyString(FileBuildPod))
	w.close()
	w.close()
	if params := r.jenkinsParams(); len(params) > 0 {
		w.open("parameters")
		for _, v := range params {
			def := ""
			if val, ok := r.known[v]; ok {
				def = "defaultValue: " + groovyString(val) + ", "
			}
			w.line("string(name: %s, %sdescription: %s)", groovyString(v), def,
				groovyString(fmt.Sprintf("%s refers to ${%s}", r.file, v)))
		}
		w.close()
	}
	w.open("stages")
	if r.p.Build != nil {
		w.stage("Build", containerBuild, strings.Join(r.buildScript(jenkinsWorkspace, true), "\n"))
	}
	if r.p.Image != nil {
		w.stage("Image", containerKaniko, shellJoin(r.shellExecutorArgs(jenkinsWorkspace)))
	}
	if r.p.Deploy != nil {
		w.stage("Deploy", containerKaniko, shellJoin(r.deployCommand(r.file, "${BUILD_NUMBER}")))
	}
	w.close()
	w.close()
	return []byte(w.String()), nil
}

// jenkinsParams are the variables a run of the pipeline needs that Jenkins does not set
// itself: build parameters, defaulting to the value given when rendering, if any.
func (r *renderer) jenkinsParams() []string {
	var params []string
	for _, v := range r.env {
		if !jenkinsBuiltin(v) {
			params = append(params, v)
		}
	}
	return params
}

// groovyWriter writes indented Groovy blocks.
type groovyWriter struct {
	strings.Builder
	depth int
}

func (w *groovyWriter) line(format string, args ...any) {
	w.WriteString(strings.Repeat("  ", w.depth))
	fmt.Fprintf(w, format, args...)
	w.WriteByte('\n')
}

func (w *groovyWriter) open(block string) {
	w.line("%s {", block)
	w.depth++
}

func (w *groovyWriter) close() {
	w.depth--
	w.line("}")
}

// stage writes a stage whose one step runs script with sh in container.
func (w *groovyWriter) stage(name, container, script string) {
	w.open(fmt.Sprintf("stage(%s)", groovyString(name)))
	w.open("steps")
	w.open(fmt.Sprintf("container(%s)", groovyString(container)))
	w.line("sh %s", groovyString(script))
	w.close()
	w.close()
	w.close()
}
