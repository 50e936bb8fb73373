package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kilnbuild/kiln/buildcontext"
)

// prepareContext turns --context, --context-sub-path and --git into a local directory. Archives
// and clones go to <kaniko-dir>/buildcontext, as Kaniko's, which the build never touches.
func prepareContext(ctx context.Context, c *config, stdin io.Reader, log *logger) (string, error) {
	g, err := gitOptions(c.git, os.Getenv)
	if err != nil {
		return "", err
	}
	if c.context != "" && strings.Contains(c.context, "://") && !strings.HasPrefix(c.context, "dir://") {
		log.Infof("Fetching build context %s", buildcontext.Redact(c.context))
	}
	return buildcontext.Prepare(ctx, c.context, buildcontext.Options{
		Git:     g,
		Stdin:   stdin,
		SubPath: c.contextSubPath,
		WorkDir: filepath.Join(c.kanikoDir, "buildcontext"),
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
