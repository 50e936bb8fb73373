package executor

import (
	"fmt"
	"time"

	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/registry"
	"github.com/spf13/pflag"
)

// WarmerConfig is the command line of the cache warmer (cmd/warmer), with the flags, shorthands
// and defaults of Kaniko's warmer. Its registry and TLS flags are the executor's, held in
// Registry, so the warmer pulls exactly as the executor does.
type WarmerConfig struct {
	Images         []string      // --image, -i (repeatable)
	CacheDir       string        // --cache-dir, -c
	Force          bool          // --force, -f: download again what is cached
	CacheTTL       time.Duration // --cache-ttl (accepted; cached base images do not expire)
	Dockerfile     string        // --dockerfile, -d: warm every FROM of this Dockerfile
	BuildArgs      []string      // --build-arg (repeatable), for ARGs before FROM
	CustomPlatform string        // --custom-platform (Kaniko's warmer: --customPlatform)
	Verbosity      string        // --verbosity, -v
	LogFormat      string        // --log-format
	LogTimestamp   bool          // --log-timestamp

	// Registry holds the registry and TLS flags (--insecure-pull, --registry-mirror ...);
	// its other fields are unused.
	Registry Config
}

// ParseWarmerFlags parses args as the warmer's command line (without the program name) and
// checks it. Errors name the flag at fault.
func ParseWarmerFlags(args []string) (*WarmerConfig, error) {
	c := &WarmerConfig{}
	fs := NewWarmerFlagSet(c)
	if err := parseFlagSet(fs, args, "the warmer takes flags only (--image IMAGE)"); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// NewWarmerFlagSet returns the warmer's flag set bound to c.
func NewWarmerFlagSet(c *WarmerConfig) *pflag.FlagSet {
	fs := pflag.NewFlagSet("warmer", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.StringArrayVarP(&c.Images, "image", "i", nil, "Image to cache; repeatable")
	fs.StringVarP(&c.CacheDir, "cache-dir", "c", DefaultCacheDir, "Directory of the cache (the executor's --cache-dir)")
	fs.BoolVarP(&c.Force, "force", "f", false, "Download images again even when they are cached")
	fs.DurationVar(&c.CacheTTL, "cache-ttl", 336*time.Hour, "Accepted for compatibility: cached base images are checked against their digests, not expired")
	fs.StringVarP(&c.Dockerfile, "dockerfile", "d", "", "Dockerfile whose FROM images are cached (stages and scratch skipped)")
	fs.StringArrayVar(&c.BuildArgs, "build-arg", nil, "NAME=VALUE (or NAME, from the environment) for the ARGs before FROM in --dockerfile; repeatable")
	fs.StringVar(&c.CustomPlatform, "custom-platform", "", "Platform to cache images for, os/arch[/variant] (default: this machine's)")
	fs.StringVar(&c.CustomPlatform, "customPlatform", "", "Kaniko's warmer spelling of --custom-platform")
	_ = fs.MarkHidden("customPlatform")
	addLogFlags(fs, &c.Verbosity, &c.LogFormat, &c.LogTimestamp)

	r := &c.Registry
	addRegistryTLSFlags(fs, r, registryFlagHelp{
		insecure:      "Pull from insecure registries over plain HTTP (the warmer only pulls: same as --insecure-pull)",
		skipTLSVerify: "Pull without verifying TLS certificates (same as --skip-tls-verify-pull)",
		fallback:      "Fail instead of falling back to the original registry when every mirror fails",
	})
	fs.IntVar(&r.ImageDownloadRetry, "image-download-retry", 0, "Retries for pulling an image")
	return fs
}

// Validate rejects values that cannot work, naming the flag.
func (c *WarmerConfig) Validate() error {
	if len(c.Images) == 0 && c.Dockerfile == "" {
		return fmt.Errorf("no --image and no --dockerfile given: name at least one image to cache")
	}
	if c.CacheDir == "" {
		return fmt.Errorf("--cache-dir is empty")
	}
	if err := validateLogFormat(c.LogFormat); err != nil {
		return err
	}
	if c.CustomPlatform != "" {
		if _, err := dockerfile.ParsePlatform(c.CustomPlatform); err != nil {
			return fmt.Errorf("--custom-platform=%s: %w", c.CustomPlatform, err)
		}
	}
	for _, a := range c.BuildArgs {
		if a == "" || a[0] == '=' {
			return fmt.Errorf("--build-arg %q: must be NAME=VALUE or NAME", a)
		}
	}
	return nil
}

// PullOptions maps the registry and TLS flags onto registry options, as the executor maps them
// for its pulls; --insecure and --skip-tls-verify count as their pull forms, since the warmer
// only pulls. lookupEnv supplies KANIKO_REGISTRY_MIRROR and KANIKO_REGISTRY_MAP.
func (c *WarmerConfig) PullOptions(lookupEnv func(string) (string, bool)) ([]registry.Option, error) {
	r := c.Registry
	r.InsecurePull = r.InsecurePull || r.Insecure
	r.SkipTLSVerifyPull = r.SkipTLSVerifyPull || r.SkipTLSVerify
	pull, _, err := r.RegistryOptions(lookupEnv)
	if err != nil {
		return nil, err
	}
	return append(pull, registry.WithUserAgent("kiln-warmer")), nil
}
