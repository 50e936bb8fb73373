package builder

import (
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/dockerfile"
)

// withDefaultPath gives a stage's config Docker's default PATH when its base sets none (FROM
// scratch, or an image whose Env lacks PATH), as BuildKit does at the start of every stage and
// Kaniko does for a base without Env: images built from such bases then carry the same Env.
// Windows images are left to their OS, as BuildKit leaves them.
func withDefaultPath(cfg *v1.ConfigFile) {
	if cfg.OS == "windows" {
		return
	}
	for _, e := range cfg.Config.Env {
		if k, _, _ := strings.Cut(e, "="); k == "PATH" {
			return
		}
	}
	cfg.Config.Env = append(cfg.Config.Env, "PATH="+defaultPath)
}

// stageScope starts the variable scope of a stage. A stage built FROM an earlier stage also
// sees the ARGs that stage (and, through it, its own parents) declared, with the values they
// had when it ended: Kaniko and BuildKit both carry them over, and Dockerfiles such as
// `FROM base AS dev` + `ARG NAME="$NAME-dev"` rely on it.
func (b *build) stageScope(base dockerfile.Base, env []string) *dockerfile.Scope {
	s := dockerfile.NewScope(env, b.meta, b.o.buildArgs)
	if base.Stage >= 0 {
		if parent, ok := b.scopes[base.Stage]; ok {
			s.InheritArgs(parent)
		}
	}
	return s
}
