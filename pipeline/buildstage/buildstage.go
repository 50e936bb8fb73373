// Package buildstage is the pipeline's build stage: the stage image (an SDK, a Go toolchain) is
// pulled, unpacked into a directory and the build command run there with package sandbox,
// Kiln's directory-mode sandbox, with the workspace bind-mounted read-write at /workspace, as
// the SDK container of a CI pod runs it. No container daemon is involved.
//
// The command runs as the stage image's user (its USER, root when it sets none), so the files
// it creates in the workspace are owned by that user on the host too, as with a CI pod's
// shared volume. The stage image's root is removed when the stage ends.
package buildstage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/kilnbuild/kiln/executor"
	"github.com/kilnbuild/kiln/pipeline/spec"
	"github.com/kilnbuild/kiln/registry"
	"github.com/kilnbuild/kiln/sandbox"
)

// Logger is what the stage logs through; the executor's logger is one.
type Logger interface {
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
}

// Options says where and how the build stage runs.
type Options struct {
	// Workspace is the host directory bind-mounted read-write at /workspace (spec.DefaultWorkdir);
	// "" = the current directory.
	Workspace string
	// WorkDir is where the stage image is unpacked; it must be outside Workspace. "" = a
	// temporary directory. The unpacked root is removed when the stage ends, either way.
	WorkDir string
	// DockerConfig is the directory of the config.json holding registry credentials, as the
	// executor reads them; "" = $DOCKER_CONFIG, then ~/.docker.
	DockerConfig string
	// Pull says how the stage image is pulled (insecure registries, mirrors, ...); it comes
	// after DockerConfig's keychain, so a WithKeychain here wins.
	Pull []registry.Option
	// Stdout and Stderr receive the command's output (nil: discarded).
	Stdout, Stderr io.Writer
	// Log receives progress: the pull (with the digest), the unpacking (layers, sizes, times),
	// the command and the durations.
	Log Logger
	// Pipeline, when set, is the file the build section comes from: errors then name its file
	// and the line of the key at fault.
	Pipeline *spec.Pipeline
}

// Run runs the build stage b. A command that exits non-zero returns a *CommandError, which
// unwraps to the *sandbox.ExitError holding the exit code.
func Run(ctx context.Context, b *spec.Build, o Options) error {
	if b == nil {
		return errors.New("buildstage: the pipeline has no build section")
	}
	log := o.Log
	if log == nil {
		log = nopLogger{}
	}
	if err := sandbox.Supported(); err != nil {
		return fmt.Errorf("the build stage runs its command in Kiln's sandbox, which cannot run here: %w", err)
	}
	ws, err := workspaceDir(o.Workspace)
	if err != nil {
		return err
	}
	scratch, cleanup, err := scratchDir(o.WorkDir, ws)
	if err != nil {
		return err
	}
	defer func() {
		if err := cleanup(); err != nil {
			log.Warnf("could not remove the build stage's root: %v", err)
		}
	}()
	root, err := pullAndUnpack(ctx, b, o, log, filepath.Join(scratch, "rootfs"))
	if err != nil {
		return err
	}
	if err := runCommand(ctx, b, o, log, root, ws); err != nil {
		return err
	}
	return checkOutput(b, o, log, ws)
}

// at prefixes a message about key with the pipeline file and line, when known.
func (o *Options) at(key string) string {
	if o.Pipeline == nil || o.Pipeline.File == "" {
		return key
	}
	if line := o.Pipeline.Line(key); line > 0 {
		return fmt.Sprintf("%s:%d: %s", o.Pipeline.File, line, key)
	}
	return o.Pipeline.File + ": " + key
}

// pullAndUnpack pulls the stage image and unpacks it into dir.
func pullAndUnpack(ctx context.Context, b *spec.Build, o Options, log Logger, dir string) (*sandbox.Root, error) {
	start := time.Now()
	log.Infof("pulling the stage image %s", b.Image)
	opts := o.Pull
	if o.DockerConfig != "" {
		opts = append([]registry.Option{registry.WithKeychain(executor.DockerConfigKeychain(o.DockerConfig))}, opts...)
	}
	img, err := registry.Pull(ctx, b.Image, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (registry %s)", o.at("build.image"), err, registryOf(b.Image))
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", o.at("build.image"), b.Image, err)
	}
	log.Infof("pulled %s (%s) in %s", b.Image, digest, time.Since(start).Round(time.Millisecond))
	root, err := sandbox.Unpack(ctx, img, dir, sandbox.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("%s: unpack %s: %w", o.at("build.image"), b.Image, err)
	}
	return root, nil
}

// registryOf names the registry of an image reference ("index.docker.io" for "golang:1.26").
func registryOf(ref string) string {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "unknown: " + err.Error()
	}
	return r.Context().RegistryStr()
}

// runCommand runs the build command in root with the workspace at /workspace.
func runCommand(ctx context.Context, b *spec.Build, o Options, log Logger, root *sandbox.Root, ws string) error {
	args := b.Command.Args()
	workdir := b.WorkdirOrDefault()
	if !path.IsAbs(workdir) {
		workdir = path.Join(spec.DefaultWorkdir, workdir)
	}
	tail := newTailBuffer(tailLines)
	stdout, stderr := tail.writers(o.Stdout, o.Stderr)
	start := time.Now()
	log.Infof("running %s in %s (workspace %s at %s)", describe(b.Command), workdir, ws, spec.DefaultWorkdir)
	err := root.Run(ctx, sandbox.Command{
		Args:   args,
		Env:    envList(b.Env),
		Dir:    workdir,
		Mounts: []sandbox.Mount{{Source: ws, Target: spec.DefaultWorkdir}},
		Stdout: stdout,
		Stderr: stderr,
	})
	took := time.Since(start).Round(time.Millisecond)
	var exit *sandbox.ExitError
	if errors.As(err, &exit) {
		log.Infof("the command failed with exit code %d after %s", exit.Code, took)
		return &CommandError{Key: o.at("build.command"), Command: describe(b.Command), Exit: exit, Tail: tail.lines()}
	}
	if err != nil {
		return fmt.Errorf("%s: in the stage image %s: %w", o.at("build.command"), b.Image, err)
	}
	log.Infof("the command succeeded in %s", took)
	return nil
}

// describe shows a command as the pipeline file has it.
func describe(c spec.Command) string {
	if c.Exec == nil {
		return fmt.Sprintf("%q", c.Shell)
	}
	return fmt.Sprintf("%q", c.Exec)
}

// envList turns build.env into KEY=VALUE pairs, sorted so runs are repeatable.
func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// CommandError is a build command that ran and exited non-zero.
type CommandError struct {
	// Key names the pipeline key (with file and line when known).
	Key string
	// Command is the command as written in the pipeline file.
	Command string
	// Exit holds the exit code.
	Exit *sandbox.ExitError
	// Tail holds the last lines of the command's output (stdout and stderr).
	Tail []string
}

// Error names the command and its exit code and shows the last lines of its output.
func (e *CommandError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s exited with code %d", e.Key, e.Command, e.Exit.Code)
	if len(e.Tail) > 0 {
		b.WriteString("; the last lines of its output:")
		for _, l := range e.Tail {
			b.WriteString("\n    " + l)
		}
	}
	return b.String()
}

// Unwrap returns the *sandbox.ExitError.
func (e *CommandError) Unwrap() error { return e.Exit }

type nopLogger struct{}

func (nopLogger) Infof(string, ...any) {}
func (nopLogger) Warnf(string, ...any) {}
