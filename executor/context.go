package executor

import (
	"context"
	"strings"

	"github.com/kilnbuild/kiln/buildcontext"
)

// prepareContext turns --context, --context-sub-path and --git into a local directory.
// Archives and clones are unpacked into workDir (in pod mode <kaniko-dir>/buildcontext, as
// Kaniko's), which the build never touches.
func prepareContext(ctx context.Context, c *Config, o *runOptions, workDir string) (string, error) {
	g, err := gitOptions(c.Git, o.getenv)
	if err != nil {
		return "", err
	}
	if c.Context != "" && strings.Contains(c.Context, "://") && !strings.HasPrefix(c.Context, "dir://") {
		o.log.Infof("Fetching build context %s", buildcontext.Redact(c.Context))
	}
	return buildcontext.Prepare(ctx, c.Context, buildcontext.Options{
		Git:     g,
		Stdin:   o.stdin,
		SubPath: c.ContextSubPath,
		WorkDir: workDir,
	})
}

// gitOptions layers every --git value, then Kaniko's GIT_* environment variables.
func gitOptions(flags []string, getenv func(string) string) (buildcontext.GitOptions, error) {
	g, err := buildcontext.ParseGitFlag(strings.Join(flags, ","))
	if err != nil {
		return g, err
	}
	g.PullMethod = getenv("GIT_PULL_METHOD")
	g.Username, g.Password = getenv("GIT_USERNAME"), getenv("GIT_PASSWORD")
	if token := getenv("GIT_TOKEN"); token != "" {
		// Kaniko sends a token as the username with an empty password.
		g.Username, g.Password = token, ""
	}
	return g, nil
}
