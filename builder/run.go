package builder

import (
	"context"
	"errors"
	"path/filepath"
	"strings"

	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/internal/runner"
	"github.com/kilnbuild/kiln/internal/users"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// defaultPath is Docker's default PATH, which a stage's Env gets when its base sets none
// (withDefaultPath), so RUN and the image both have it.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// runCommand executes a RUN in the root with the image's ENV, USER, WORKDIR and SHELL and its
// --mount and --network options, and returns the history text for it.
func (b *build) runCommand(ctx context.Context, s *stageState, c *instructions.RunCommand) (string, error) {
	shell := s.cfg.Config.Shell
	if len(shell) == 0 {
		shell = defaultShell
	}
	argv, script, err := dockerfile.RunArgs(c, shell)
	if err != nil {
		return "", err
	}
	id, err := users.Resolve(b.root, s.cfg.Config.User)
	if err != nil {
		return "", err
	}
	env := s.scope.RunEnv()
	if !hasEnv(env, "HOME") {
		home := id.Home
		if home == "" {
			home = "/"
		}
		env = append(env, "HOME="+home)
	}
	dir := s.cfg.Config.WorkingDir
	if dir == "" {
		dir = "/"
	}
	out := b.o.output
	if out == nil {
		events := newOutputEvents(b.o.reporter, Event{Stage: s.index, StageName: s.name,
			Instruction: sourceOf(c), Line: lineOf(c)})
		defer events.flush()
		out = events
	}
	setup, err := b.setupRun(ctx, s, c, dir, env)
	if err != nil {
		return "", err
	}
	defer setup.done()
	spec := runner.Spec{Root: b.root, Args: argv, Env: env, Dir: dir, UID: id.UID, GID: id.GID,
		Groups: id.Groups, Stdout: out, Stderr: out, TempDir: filepath.Join(b.workDir, "tmp")}
	if script != nil {
		spec.Files = []runner.File{{Path: script.Path, Data: script.Data, Mode: 0o755}}
	}
	setup.apply(&spec)
	if err := b.runProcess(ctx, spec); err != nil {
		var exit *runner.ExitError
		if errors.As(err, &exit) {
			return "", &RunError{Code: exit.Code}
		}
		return "", err
	}
	return runHistory(argv), nil
}

// runHistory is the created_by of a RUN: its command, as BuildKit writes it but without the
// "|N NAME=value" list of build args BuildKit puts in front. Build arg values (often tokens)
// stay out of the image's history, as Kaniko keeps them out.
func runHistory(argv []string) string {
	return "RUN " + strings.Join(argv, " ") + " # buildkit"
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			return true
		}
	}
	return false
}
