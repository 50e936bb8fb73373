// Command executor builds a Dockerfile into an image and pushes it, as a drop-in for Kaniko's
// /kaniko/executor: same flags, same defaults, same file locations. It builds into "/" of the
// container it runs in, so outside a container it refuses to start unless --force is given.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"

	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/executor"
	"github.com/spf13/pflag"
)

func main() {
	if os.Getenv("GOGC") == "" {
		// A build holds a record of every path in the root while it walks it; collecting
		// garbage four times as often as Go's default keeps the pod's peak memory (its limit)
		// near that live set, for a CPU cost that is small next to the filesystem work
		// (manyfiles: 73 MB at the default, 65 MB at 50, 58-61 MB at 25).
		debug.SetGCPercent(25)
	}
	if os.Getpid() == 1 {
		// pid 1 of a container: reap orphans while the executor runs as our child.
		if code := runAsInit(os.Stderr); code >= 0 {
			os.Exit(code)
		}
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "version" {
		fmt.Fprintf(stdout, "Kiln executor version: %s\n", version())
		return 0
	}
	var c executor.Config
	fs := executor.NewFlagSet(&c)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "Error: %v\n", err)
		fmt.Fprintf(stderr, "Usage of executor:\n%s", fs.FlagUsages())
		return 2
	}
	log, err := executor.NewLogger(stderr, c.LogFormat, c.Verbosity, c.LogTimestamp)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 2
	}
	for _, w := range c.ApplyDeprecated() {
		log.Warnf("%s", w)
	}
	if err := c.Validate(); err != nil {
		log.Errorf("%v", err)
		return 2
	}
	if !c.Force {
		// Checked here too (Run checks again) so nothing is copied for --kaniko-dir first.
		if err := executor.CheckPodLike(c.KanikoDir); err != nil {
			log.Errorf("%v", err)
			return 1
		}
	}
	if err := relocateKanikoDir(executor.DefaultKanikoDir, c.KanikoDir, os.Setenv); err != nil {
		log.Errorf("%v", err)
		return 1
	}
	if os.Getenv("DOCKER_CONFIG") == "" {
		// Kaniko's image sets this; honour the same credentials location when run elsewhere.
		os.Setenv("DOCKER_CONFIG", filepath.Join(c.KanikoDir, ".docker"))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	_, err = executor.Run(ctx, &c, executor.WithPodRoot(), executor.WithLogger(log),
		executor.WithOutput(stdout), executor.WithStdin(os.Stdin))
	return exitCode(ctx, err, log)
}

// exitCode logs a failed build and maps it to the exit code: a failing RUN's own code, as
// with Kaniko, and 1 otherwise.
func exitCode(ctx context.Context, err error, log *executor.Logger) int {
	if err == nil {
		return 0
	}
	if ctx.Err() != nil {
		log.Errorf("build interrupted: %v (nothing was pushed)", err)
		return 1
	}
	log.Errorf("%v", err)
	var runErr *builder.RunError
	if errors.As(err, &runErr) && runErr.Code > 0 && runErr.Code < 256 {
		return runErr.Code
	}
	return 1
}
