package spec

import (
	"path/filepath"
	"time"
)

// The ...OrDefault methods give the value a stage uses: the file's, or the default where the
// file is silent. Parse leaves the fields as written, so that render can tell the two apart.

// ExecutorImageOrDefault is the executor image rendered pods run.
func (p *Pipeline) ExecutorImageOrDefault() string { return or(p.ExecutorImage, DefaultExecutorImage) }

// RegistrySecretOrDefault is the docker-registry Secret rendered pods mount.
func (p *Pipeline) RegistrySecretOrDefault() string {
	return or(p.RegistrySecret, DefaultRegistrySecret)
}

// Dir is the directory of the pipeline file: image.context and deploy.manifests are relative
// to it.
func (p *Pipeline) Dir() string { return filepath.Dir(p.File) }

// WorkdirOrDefault is the command's working directory in the stage image.
func (b *Build) WorkdirOrDefault() string { return or(b.Workdir, DefaultWorkdir) }

// DockerfileOrDefault is the Dockerfile's path relative to the context.
func (i *Image) DockerfileOrDefault() string { return or(i.Dockerfile, "Dockerfile") }

// ContextOrDefault is the build context's path relative to the pipeline file.
func (i *Image) ContextOrDefault() string { return or(i.Context, ".") }

// TimeoutOrDefault bounds the wait for rollouts.
func (d *Deploy) TimeoutOrDefault() time.Duration {
	if d.Timeout.Duration > 0 {
		return d.Timeout.Duration
	}
	return DefaultTimeout
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
