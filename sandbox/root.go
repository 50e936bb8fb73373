package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/internal/runner"
	"github.com/kilnbuild/kiln/internal/users"
)

// defaultPath is the PATH a command gets when neither the image nor the command sets one
// (Docker's default).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Root is an image's filesystem in a host directory, with the image config whose defaults
// commands run there get. Unpack makes one; a Root literal describes a directory unpacked
// earlier. Only one command may run in a Root at a time.
type Root struct {
	// Dir is the host directory holding the filesystem. It must not be the host's /.
	Dir string
	// Config is the image's config: Run uses Env, WorkingDir, User, Entrypoint and Cmd.
	Config v1.Config
}

// Supported reports whether Run can work on this machine, and if not, why: it needs root and
// permission to create mount, pid, uts and ipc namespaces and to mount in them.
func Supported() error { return runner.Supported() }

// Run runs c with r.Dir as its root in the directory-mode sandbox (see the package
// documentation) and waits for it. A command that exits non-zero returns *ExitError.
// Cancelling ctx kills the command and everything it started, and returns an error wrapping
// ctx.Err(). Problems before the command starts (no such program, an unknown user, a bad
// mount) are plain errors naming what is wrong.
func (r *Root) Run(ctx context.Context, c Command) error {
	dir, err := r.hostDir()
	if err != nil {
		return err
	}
	args := c.Args
	if len(args) == 0 {
		args = append(slices.Clone(r.Config.Entrypoint), r.Config.Cmd...)
	}
	if len(args) == 0 {
		return errors.New("sandbox: no command given, and the image has no Entrypoint or Cmd")
	}
	user := c.User
	if user == "" {
		user = r.Config.User
	}
	id, err := users.Resolve(dir, user)
	if err != nil {
		return fmt.Errorf("sandbox: user %q, looked up in %s/etc/passwd and /etc/group: %w", user, dir, err)
	}
	workdir := c.Dir
	if workdir == "" {
		workdir = r.Config.WorkingDir
	}
	spec := runner.Spec{
		Root: dir, Args: args, Env: r.env(c.Env, id.Home), Dir: workdir,
		UID: id.UID, GID: id.GID, Groups: id.Groups, Hostname: c.Hostname,
		Stdin: c.Stdin, Stdout: c.Stdout, Stderr: c.Stderr,
	}
	for _, m := range c.Mounts {
		spec.Mounts = append(spec.Mounts, runner.Mount{Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	err = runner.Run(ctx, spec)
	var exit *runner.ExitError
	if errors.As(err, &exit) {
		return &ExitError{Code: exit.Code}
	}
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	return nil
}

// env is the image's Env with extra after it (so its keys win; the runner keeps the last
// value of a key), plus PATH and HOME where neither sets them.
func (r *Root) env(extra []string, home string) []string {
	env := append(slices.Clone(r.Config.Env), extra...)
	has := func(key string) bool {
		return slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, key+"=") })
	}
	if !has("PATH") {
		env = append(env, "PATH="+defaultPath)
	}
	if !has("HOME") {
		if home == "" {
			home = "/"
		}
		env = append(env, "HOME="+home)
	}
	return env
}

// hostDir returns r.Dir as an absolute, symlink-free path, refusing the host's / (which the
// runner would take for pod mode: running on the host itself).
func (r *Root) hostDir() (string, error) {
	if r.Dir == "" {
		return "", errors.New("sandbox: the root has no directory")
	}
	abs, err := filepath.Abs(r.Dir)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return "", fmt.Errorf("sandbox: root %s: %w", r.Dir, err)
	}
	if abs == "/" {
		return "", fmt.Errorf("sandbox: root %s is the host's /; a sandbox runs in an unpacked image directory", r.Dir)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("sandbox: root %s: %w", r.Dir, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("sandbox: root %s is not a directory", r.Dir)
	}
	return abs, nil
}

// Remove deletes the root's directory and everything in it. It refuses the host's /.
func (r *Root) Remove() error {
	dir, err := r.hostDir()
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("sandbox: remove root %s: %w", dir, err)
	}
	return nil
}
