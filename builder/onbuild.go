package builder

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// onBuildTriggers parses the ONBUILD triggers a base image carries; they run right after FROM.
func (b *build) onBuildTriggers(cfg *v1.ConfigFile) ([]instructions.Command, error) {
	if len(cfg.Config.OnBuild) == 0 {
		return nil, nil
	}
	return dockerfile.OnBuildCommands(cfg.Config.OnBuild, b.df.Name)
}
