// Package render writes what runs a pipeline in a cluster: a Jenkinsfile and its build pod, a
// .gitlab-ci.yml, a Kubernetes Job, the RBAC they need, a Jenkins controller, and the command
// that creates the registry Secret.
//
// It renders from the raw pipeline: ${VAR} references are left for the CI system to fill in
// (BUILD_NUMBER above all). Every Kubernetes object is built from the typed k8s.io/api structs
// and marshalled with sigs.k8s.io/yaml, never from text templates of YAML.
package render
