package buildstage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kilnbuild/kiln/pipeline/spec"
)

// workspaceDir returns the workspace as an absolute, symlink-free directory path.
func workspaceDir(ws string) (string, error) {
	if ws == "" {
		ws = "."
	}
	abs, err := filepath.Abs(ws)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return "", fmt.Errorf("workspace %s: %w", ws, err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("workspace %s is not a directory", ws)
	}
	if abs == "/" {
		return "", errors.New("the workspace is the host's /: give the app's directory")
	}
	return abs, nil
}

// scratchDir makes a fresh directory for the stage image's root, in workDir (created if
// missing) or in the system's temp dir, refusing one inside the workspace. cleanup removes it.
func scratchDir(workDir, ws string) (dir string, cleanup func() error, err error) {
	parent := workDir
	if parent == "" {
		parent = os.TempDir()
	} else if err := os.MkdirAll(parent, 0o700); err != nil {
		return "", nil, fmt.Errorf("work directory %s: %w", workDir, err)
	}
	dir, err = os.MkdirTemp(parent, "kiln-build-stage-")
	if err != nil {
		return "", nil, fmt.Errorf("work directory %s: %w", parent, err)
	}
	cleanup = func() error { return os.RemoveAll(dir) }
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("work directory %s: %w", parent, err)
	}
	if within(real, ws) {
		cleanup()
		return "", nil, fmt.Errorf("work directory %s is inside the workspace %s: the stage image would be unpacked among the files it builds; choose one outside", parent, ws)
	}
	return real, cleanup, nil
}

// within reports whether p is dir or lies below it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator))
}

// checkOutput checks build.output exists in the workspace and is not empty.
func checkOutput(b *spec.Build, o Options, log Logger, ws string) error {
	if b.Output == "" {
		return nil
	}
	key := o.at("build.output")
	if !filepath.IsLocal(b.Output) {
		return fmt.Errorf("%s %q: not a path inside the workspace", key, b.Output)
	}
	p := filepath.Join(ws, b.Output)
	real, err := filepath.EvalSymlinks(p)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s %q: the command did not create %s", key, b.Output, p)
	}
	if err != nil {
		return fmt.Errorf("%s %q: %w", key, b.Output, err)
	}
	if !within(real, ws) {
		return fmt.Errorf("%s %q: %s leads out of the workspace (to %s)", key, b.Output, p, real)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return fmt.Errorf("%s %q: %w", key, b.Output, err)
	}
	if !fi.IsDir() {
		if fi.Size() == 0 {
			return fmt.Errorf("%s %q: %s is empty after the command", key, b.Output, p)
		}
		log.Infof("output %s: %d bytes", b.Output, fi.Size())
		return nil
	}
	entries, err := os.ReadDir(real)
	if err != nil {
		return fmt.Errorf("%s %q: %w", key, b.Output, err)
	}
	if len(entries) == 0 {
		return fmt.Errorf("%s %q: the directory %s is empty after the command", key, b.Output, p)
	}
	what := fmt.Sprintf("%d entries", len(entries))
	if len(entries) == 1 {
		what = "1 entry"
	}
	log.Infof("output %s holds %s", b.Output, what)
	return nil
}
