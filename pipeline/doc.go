// Package pipeline runs an app's CI/CD on one machine, without a daemon: the build stage
// compiles the app in its stage image (pipeline/buildstage), the image stage builds and pushes
// its image with the executor's options and layer cache (pipeline/imagestage), and the deploy
// stage applies its manifests with the new tag and follows the rollout (pipeline/deploystage).
// The same pipeline file renders into what runs it in a cluster (pipeline/render): a Jenkinsfile
// and its build pod, a GitLab CI file, a Kubernetes Job, and least-privilege RBAC.
//
// The pipeline is a thin layer over Kiln's library: it uses builder, registry, sandbox and
// executor like any library user, and nothing in the engine knows it exists.
package pipeline
