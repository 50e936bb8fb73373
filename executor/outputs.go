package executor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/registry"
	"github.com/kilnbuild/kiln/timings"
)

// writeOutputs writes the tarball and OCI layout, pushes, and writes the digest files.
func writeOutputs(ctx context.Context, c *Config, img v1.Image, pushOpts []registry.Option, log Log) (Result, error) {
	digest, err := img.Digest()
	if err != nil {
		return Result{}, err
	}
	res := Result{Image: img, Digest: digest}
	if c.TarPath != "" {
		if err := timed(ctx, timings.Output, "write tarball "+c.TarPath, func() error {
			return registry.WriteTarball(c.TarPath, img, c.Destinations)
		}); err != nil {
			return res, fmt.Errorf("--tar-path %s: %w", c.TarPath, err)
		}
		log.Infof("Wrote image tarball %s", c.TarPath)
	}
	if c.OCILayoutPath != "" {
		ref := layoutRefName(c.Destinations)
		if err := timed(ctx, timings.Output, "write OCI layout "+c.OCILayoutPath, func() error {
			return registry.WriteOCILayout(c.OCILayoutPath, img, ref)
		}); err != nil {
			return res, fmt.Errorf("--oci-layout-path %s: %w", c.OCILayoutPath, err)
		}
		log.Infof("Wrote OCI layout %s", c.OCILayoutPath)
	}
	if c.NoPush {
		log.Infof("Skipping push (--no-push); image digest %s", digest)
	} else if len(c.Destinations) > 0 {
		if res.Digest, err = push(ctx, img, c.Destinations, pushOpts, log); err != nil {
			if c.PushRetry == 0 && ctx.Err() == nil && registry.Transient(err) {
				err = fmt.Errorf("%w (a failure that may pass: --push-retry N retries it)", err)
			}
			return res, err
		}
		res.Destinations = append([]string(nil), c.Destinations...)
	}
	return res, writeDigestFiles(c, res.Digest)
}

// push pushes img to every destination, logging progress and the duration.
func push(ctx context.Context, img v1.Image, destinations []string, pushOpts []registry.Option, log Log) (v1.Hash, error) {
	defer timings.FromContext(ctx).Start(timings.Push, "push "+strings.Join(destinations, ", "))()
	start := time.Now()
	updates := make(chan v1.Update, 64)
	done := make(chan struct{})
	go func() { logPushProgress(log, strings.Join(destinations, ", "), updates); close(done) }()
	digest, err := registry.Push(ctx, img, destinations, append(pushOpts, registry.WithProgress(updates))...)
	<-done
	if err != nil {
		return digest, err
	}
	log.Infof("Pushed %s to %s (%s)", digest, strings.Join(destinations, ", "), round(time.Since(start)))
	return digest, nil
}

// writeDigestFiles writes --digest-file, --image-name-with-digest-file and
// --image-name-tag-with-digest-file.
func writeDigestFiles(c *Config, digest v1.Hash) error {
	if c.DigestFile != "" {
		if err := registry.WriteDigestFile(c.DigestFile, digest); err != nil {
			return fmt.Errorf("--digest-file: %w", err)
		}
	}
	if c.ImageNameDigestFile != "" {
		if err := registry.WriteImageNameWithDigestFile(c.ImageNameDigestFile, c.Destinations, digest); err != nil {
			return fmt.Errorf("--image-name-with-digest-file: %w", err)
		}
	}
	if c.ImageNameTagDigestFile != "" {
		if err := registry.WriteImageNameTagWithDigestFile(c.ImageNameTagDigestFile, c.Destinations, digest); err != nil {
			return fmt.Errorf("--image-name-tag-with-digest-file: %w", err)
		}
	}
	return nil
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
