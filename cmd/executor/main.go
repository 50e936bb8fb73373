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
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/registry"
	"github.com/kilnbuild/kiln/snapshot"
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
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "version" {
		fmt.Fprintf(stdout, "Kiln executor version: %s\n", version())
		return 0
	}
	var c config
	fs := newFlagSet(&c)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "Error: %v\n", err)
		fmt.Fprintf(stderr, "Usage of executor:\n%s", fs.FlagUsages())
		return 2
	}
	log, err := newLogger(stderr, c.logFormat, c.verbosity, c.logTimestamp)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 2
	}
	for _, w := range c.applyDeprecated() {
		log.Warnf("%s", w)
	}
	if err := c.validate(); err != nil {
		log.Errorf("%v", err)
		return 2
	}
	if !c.force {
		if err := checkPodLike(c.kanikoDir); err != nil {
			log.Errorf("%v", err)
			return 1
		}
	}
	if err := relocateKanikoDir(defaultKanikoDir, c.kanikoDir, os.Setenv); err != nil {
		log.Errorf("%v", err)
		return 1
	}
	if os.Getenv("DOCKER_CONFIG") == "" {
		// Kaniko's image sets this; honour the same credentials location when run elsewhere.
		os.Setenv("DOCKER_CONFIG", filepath.Join(c.kanikoDir, ".docker"))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := execute(ctx, &c, log, stdout); err != nil {
		if ctx.Err() != nil {
			log.Errorf("build interrupted: %v (nothing was pushed)", err)
			return 1
		}
		log.Errorf("%v", err)
		// A failing RUN's exit code becomes the executor's, as with Kaniko.
		var runErr *builder.RunError
		if errors.As(err, &runErr) && runErr.Code > 0 && runErr.Code < 256 {
			return runErr.Code
		}
		return 1
	}
	return 0
}

func execute(ctx context.Context, c *config, log *logger, stdout io.Writer) error {
	contextDir, err := prepareContext(ctx, c, os.Stdin, log)
	if err != nil {
		return err
	}
	dfPath, err := resolveDockerfile(c.dockerfile, contextDir)
	if err != nil {
		return err
	}
	src, err := dockerfile.FromFile(dfPath)
	if err != nil {
		return err
	}
	buildArgs, err := dockerfile.ParseBuildArgs(c.buildArgs, os.LookupEnv)
	if err != nil {
		return fmt.Errorf("--build-arg: %w", err)
	}
	pullOpts, pushOpts, err := registryOptions(c, os.LookupEnv)
	if err != nil {
		return err
	}
	if !c.noPush && !c.skipPushPermissionCheck && len(c.destinations) > 0 {
		if err := registry.CheckPushAccess(ctx, c.destinations, pushOpts...); err != nil {
			return err
		}
	}
	opts := []builder.Option{
		builder.WithPodRoot(c.kanikoDir),
		builder.WithContextDir(contextDir),
		builder.WithBuildArgs(buildArgs),
		builder.WithTarget(c.target),
		builder.WithPullOptions(pullOpts...),
		builder.WithReporter(log),
		builder.WithOutput(stdout),
		builder.WithIgnorePaths(c.ignorePaths...),
		builder.WithIgnoreVarRun(c.ignoreVarRun),
		builder.WithSingleSnapshot(c.singleSnapshot),
		builder.WithReproducible(c.reproducible),
		builder.WithSnapshotMode(c.snapshotMode),
		builder.WithCompression(snapshot.Compression{Algorithm: c.compression, Level: compressionLevel(c.compressionLevel)}),
		builder.WithCleanup(c.cleanup),
		builder.WithForceBuildMetadata(c.forceBuildMetadata),
		builder.WithExtractRetries(c.imageFSExtractRetry),
	}
	cacheOpts, err := cacheOptions(ctx, c, pushOpts, log)
	if err != nil {
		return err
	}
	opts = append(opts, cacheOpts...)
	if c.customPlatform != "" {
		p, err := dockerfile.ParsePlatform(c.customPlatform)
		if err != nil {
			return fmt.Errorf("--custom-platform: %w", err)
		}
		opts = append(opts, builder.WithPlatform(p))
	}
	if len(c.labels) > 0 {
		labels := map[string]string{}
		for _, l := range c.labels {
			k, v, _ := strings.Cut(l, "=")
			labels[k] = v
		}
		opts = append(opts, builder.WithLabels(labels))
	}
	img, err := builder.Build(ctx, src, opts...)
	if err != nil {
		return err
	}
	return writeOutputs(ctx, c, img, pushOpts, log)
}

// compressionLevel maps Kaniko's -1 ("the default") to the builder's 0 ("the default").
func compressionLevel(l int) int {
	if l < 0 {
		return 0
	}
	return l
}

// writeOutputs writes the tarball and OCI layout, pushes, and writes the digest files.
func writeOutputs(ctx context.Context, c *config, img v1.Image, pushOpts []registry.Option, log *logger) error {
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	if c.tarPath != "" {
		if err := registry.WriteTarball(c.tarPath, img, c.destinations); err != nil {
			return fmt.Errorf("--tar-path %s: %w", c.tarPath, err)
		}
		log.Infof("Wrote image tarball %s", c.tarPath)
	}
	if c.ociLayoutPath != "" {
		ref := layoutRefName(c.destinations)
		if err := registry.WriteOCILayout(c.ociLayoutPath, img, ref); err != nil {
			return fmt.Errorf("--oci-layout-path %s: %w", c.ociLayoutPath, err)
		}
		log.Infof("Wrote OCI layout %s", c.ociLayoutPath)
	}
	if c.noPush {
		log.Infof("Skipping push (--no-push); image digest %s", digest)
	} else if len(c.destinations) > 0 {
		start := time.Now()
		updates := make(chan v1.Update, 64)
		done := make(chan struct{})
		go func() { logPushProgress(log, strings.Join(c.destinations, ", "), updates); close(done) }()
		pushed, err := registry.Push(ctx, img, c.destinations, append(pushOpts, registry.WithProgress(updates))...)
		<-done
		if err != nil {
			return err
		}
		digest = pushed
		log.Infof("Pushed %s to %s (%s)", digest, strings.Join(c.destinations, ", "), round(time.Since(start)))
	}
	if c.digestFile != "" {
		if err := registry.WriteDigestFile(c.digestFile, digest); err != nil {
			return fmt.Errorf("--digest-file: %w", err)
		}
	}
	if c.imageNameDigestFile != "" {
		if err := registry.WriteImageNameWithDigestFile(c.imageNameDigestFile, c.destinations, digest); err != nil {
			return fmt.Errorf("--image-name-with-digest-file: %w", err)
		}
	}
	if c.imageNameTagDigestFile != "" {
		if err := registry.WriteImageNameTagWithDigestFile(c.imageNameTagDigestFile, c.destinations, digest); err != nil {
			return fmt.Errorf("--image-name-tag-with-digest-file: %w", err)
		}
	}
	return nil
}

// resolveDockerfile finds --dockerfile as given, or relative to the context as Kaniko does.
func resolveDockerfile(path, contextDir string) (string, error) {
	if _, err := os.Stat(path); err == nil {
		return filepath.Abs(path)
	}
	if !filepath.IsAbs(path) {
		p := filepath.Join(contextDir, path)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		return "", fmt.Errorf("--dockerfile: no Dockerfile at %s (nor at %s in the context)", path, p)
	}
	return "", fmt.Errorf("--dockerfile: no Dockerfile at %s", path)
}

// layoutRefName is the tag the OCI layout's index names the image by (its
// org.opencontainers.image.ref.name): the first destination's tag, as skopeo and umoci expect a
// plain tag there.
func layoutRefName(destinations []string) string {
	if len(destinations) == 0 {
		return "latest"
	}
	ref, err := name.ParseReference(destinations[0])
	if err != nil {
		return "latest"
	}
	if tag, ok := ref.(name.Tag); ok {
		return tag.TagStr()
	}
	return "latest"
}
