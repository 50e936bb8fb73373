// Command warmer fills the executor's base image cache (--cache-dir) ahead of builds, as a
// drop-in for Kaniko's /kaniko/warmer: same flags, same defaults. Images come from --image
// (repeatable) and from the FROM lines of --dockerfile; registry credentials come from the
// same config.json as the executor's ($DOCKER_CONFIG, else /kaniko/.docker). --dockerfile may
// be a file or an http(s) URL, as in Kaniko. It exits 1 when any image could not be cached
// (the others still are), 2 on a bad command line.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/executor"
	"github.com/kilnbuild/kiln/registry"
	"github.com/kilnbuild/kiln/warmer"
	"github.com/spf13/pflag"
)

func main() { os.Exit(run(os.Args[1:], os.Stderr, os.LookupEnv)) }

// run is the whole command; it returns the exit code.
func run(args []string, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	var c executor.WarmerConfig
	fs := executor.NewWarmerFlagSet(&c)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "Error: %v\nUsage of warmer:\n%s", err, fs.FlagUsages())
		return 2
	}
	log, err := executor.NewLogger(stderr, c.LogFormat, c.Verbosity, c.LogTimestamp)
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q: the warmer takes flags only (--image IMAGE)", fs.Arg(0))
	}
	if err == nil {
		err = c.Validate()
	}
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	opts, refs, err := warmOptions(ctx, &c, lookupEnv)
	if err != nil {
		log.Errorf("%v", err)
		return 2
	}
	opts = append(opts, warmer.WithLog(log))
	start := time.Now()
	results, err := warmer.Warm(ctx, c.CacheDir, refs, opts...)
	failed, skipped := 0, 0
	for _, r := range results {
		switch {
		case r.Err != nil:
			failed++
		case r.Skipped:
			skipped++
		}
	}
	if err != nil || ctx.Err() != nil {
		log.Errorf("%d of %d images could not be cached in %s", max(failed, 1), len(refs), c.CacheDir)
		return 1
	}
	log.Infof("%d images cached in %s (%d already there) in %s", len(refs), c.CacheDir, skipped,
		time.Since(start).Round(10*time.Millisecond))
	return 0
}

// warmOptions maps the flags onto Warm's options and the list of images.
func warmOptions(ctx context.Context, c *executor.WarmerConfig, lookupEnv func(string) (string, bool)) ([]warmer.Option, []warmer.Ref, error) {
	pull, err := c.PullOptions(lookupEnv)
	if err != nil {
		return nil, nil, err
	}
	pull = append(pull, registry.WithKeychain(executor.DockerConfigKeychain(dockerConfigDir(lookupEnv))))
	var target dockerfile.Platform
	if c.CustomPlatform != "" {
		if target, err = dockerfile.ParsePlatform(c.CustomPlatform); err != nil {
			return nil, nil, fmt.Errorf("--custom-platform=%s: %w", c.CustomPlatform, err)
		}
	}
	refs := warmer.Refs(c.Images...)
	if c.Dockerfile != "" {
		src, err := readDockerfile(ctx, c.Dockerfile)
		if err == nil {
			var more []warmer.Ref
			more, err = warmer.DockerfileRefs(src, c.BuildArgs, lookupEnv, target)
			refs = append(refs, more...)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("--dockerfile %s: %w", c.Dockerfile, err)
		}
	}
	opts := []warmer.Option{warmer.WithPullOptions(pull...), warmer.WithForce(c.Force)}
	if c.CustomPlatform != "" {
		opts = append(opts, warmer.WithPlatform(v1.Platform{OS: target.OS, Architecture: target.Architecture, Variant: target.Variant}))
	}
	return opts, refs, nil
}

// readDockerfile reads a Dockerfile from a file or, as Kaniko's warmer does, an http(s) URL.
func readDockerfile(ctx context.Context, where string) (dockerfile.Source, error) {
	if !strings.HasPrefix(where, "https://") && !strings.HasPrefix(where, "http://") {
		return dockerfile.FromFile(where)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
	if err != nil {
		return dockerfile.Source{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return dockerfile.Source{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return dockerfile.Source{}, fmt.Errorf("HTTP %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20)) // a Dockerfile, not a download
	if err != nil {
		return dockerfile.Source{}, err
	}
	return dockerfile.Source{Name: where, Data: data}, nil
}

// dockerConfigDir is where the executor reads credentials: $DOCKER_CONFIG, else the
// .docker directory of $KANIKO_DIR (default /kaniko).
func dockerConfigDir(lookupEnv func(string) (string, bool)) string {
	if d, ok := lookupEnv("DOCKER_CONFIG"); ok && d != "" {
		return d
	}
	if d, ok := lookupEnv("KANIKO_DIR"); ok && d != "" {
		return filepath.Join(d, ".docker")
	}
	return filepath.Join(executor.DefaultKanikoDir, ".docker")
}
