package runner

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
)

// Run runs the process described by s and waits for it. A command that
// exits non-zero returns *ExitError. Cancelling ctx kills the command and
// everything it started and returns ctx.Err() wrapped. Set-up problems (a
// missing executable, an unusable root) are returned as plain errors.
func Run(ctx context.Context, s Spec) error {
	if len(s.Args) == 0 || s.Args[0] == "" {
		return errors.New("runner: no command to run")
	}
	if s.Root == "" {
		return errors.New("runner: no root given (use \"/\" for pod mode)")
	}
	s.Env = dedupEnv(s.Env)
	if filepath.Clean(s.Root) == "/" {
		return runPod(ctx, s)
	}
	return runDir(ctx, s)
}

// dedupEnv keeps the last value of every key, as os/exec does, so the
// command sees the same environment in both modes.
func dedupEnv(env []string) []string {
	last := map[string]int{}
	for i, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		last[k] = i
	}
	out := make([]string, 0, len(last))
	for i, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if last[k] == i {
			out = append(out, kv)
		}
	}
	return out
}
