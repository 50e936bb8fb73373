package executor

import (
	"errors"

	"github.com/kilnbuild/kiln/builder"
)

// contextOptions turns --build-context into named contexts and gives the build the --git
// credentials and TLS setting (GIT_USERNAME, GIT_PASSWORD, GIT_TOKEN, insecure-skip-tls) for
// Git sources: ADD of a repository and Git named contexts.
func contextOptions(c *Config, o *runOptions) ([]builder.Option, error) {
	g, err := gitOptions(c.Git, o.getenv)
	if err != nil {
		return nil, err
	}
	opts := []builder.Option{builder.WithGit(g)}
	for _, spec := range c.BuildContexts {
		bc, err := builder.ParseBuildContext(spec)
		if err != nil {
			return nil, err
		}
		opts = append(opts, builder.WithBuildContexts(bc))
	}
	return opts, nil
}

// validateBuildContexts checks the syntax of every --build-context.
func (c *Config) validateBuildContexts() error {
	var errs []error
	for _, spec := range c.BuildContexts {
		if _, err := builder.ParseBuildContext(spec); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
