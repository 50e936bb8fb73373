package imagestage

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/executor"
	"github.com/kilnbuild/kiln/pipeline/spec"
)

// parseFlags parses the stage's executor command line with the executor's flag set. The
// pipeline file's part is parsed alone first, so an error there names image.flags rather
// than the caller's extra flags.
func parseFlags(img *spec.Image, workspace string, extra []string) (*executor.Config, error) {
	args := ExecutorArgs(img, workspace)
	if _, err := parse(args); err != nil {
		return nil, fmt.Errorf("image.flags: %w", err)
	}
	// "--cache-dir=" first: no base image cache unless a flag names one (see Options).
	c, err := parse(append(append([]string{"--cache-dir="}, args...), extra...))
	if err != nil {
		return nil, fmt.Errorf("extra executor flags %q: %w", extra, err)
	}
	c.Warnings = c.ApplyDeprecated()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	return c, nil
}

func parse(args []string) (*executor.Config, error) {
	c := &executor.Config{}
	fs := executor.NewFlagSet(c)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%q is not a flag (write --flag=value as one entry)", fs.Arg(0))
	}
	return c, nil
}

// workDirs returns the build's root and work directory under dir (a new temporary directory
// when dir is ""), and a function removing what the build left there.
func workDirs(dir, workspace string) (root, work string, cleanup func(), err error) {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "kiln-image-")
		if err != nil {
			return "", "", nil, err
		}
		return filepath.Join(tmp, "rootfs"), filepath.Join(tmp, "work"), func() { os.RemoveAll(tmp) }, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", nil, err
	}
	if rel, err := filepath.Rel(workspace, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		return "", "", nil, fmt.Errorf("image stage work dir %s is inside the workspace %s: the build context would hold the build's own root", abs, workspace)
	}
	root, work = filepath.Join(abs, "rootfs"), filepath.Join(abs, "work")
	return root, work, func() { os.RemoveAll(root); os.RemoveAll(work) }, nil
}

// counter counts steps and cache answers on their way to the next reporter.
type counter struct {
	steps, hits, misses atomic.Int64
	next                builder.Reporter
}

// Report implements builder.Reporter.
func (c *counter) Report(e builder.Event) {
	switch e.Kind {
	case builder.EventStep:
		c.steps.Add(1)
	case builder.EventCacheHit:
		c.hits.Add(1)
	case builder.EventCacheMiss:
		c.misses.Add(1)
	}
	c.next.Report(e)
}

type nopLogger struct{}

func (nopLogger) Infof(string, ...any) {}
func (nopLogger) Warnf(string, ...any) {}
