package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// config is every executor flag, with Kaniko's names and defaults.
type config struct {
	dockerfile, context, contextSubPath                       string
	destinations                                              []string
	force                                                     bool
	buildArgs, labels                                         []string
	target, customPlatform                                    string
	insecure, insecurePull                                    bool
	skipTLSVerify, skipTLSVerifyPull                          bool
	insecureRegistries, skipTLSRegistries                     []string
	registryCertificates, registryClientCerts                 []string
	registryMirrors, registryMaps                             []string
	skipDefaultRegistryFallback                               bool
	noPush, noPushCache                                       bool
	tarPath, ociLayoutPath                                    string
	digestFile, imageNameDigestFile, imageNameTagDigestFile   string
	singleSnapshot, reproducible                              bool
	snapshotMode                                              string
	cleanup, ignoreVarRun                                     bool
	ignorePaths                                               []string
	kanikoDir                                                 string
	verbosity, logFormat                                      string
	logTimestamp                                              bool
	skipUnusedStages                                          bool
	forceBuildMetadata                                        bool
	compression                                               string
	compressionLevel                                          int
	cache, cacheCopyLayers, cacheRunLayers, compressedCaching bool
	cacheRepo, cacheDir                                       string
	cacheTTL                                                  time.Duration
	useNewRun                                                 bool
	pushRetry, imageDownloadRetry, imageFSExtractRetry        int
	pushIgnoreImmutableTagErrors                              bool
	skipPushPermissionCheck                                   bool
	git                                                       []string

	// Kaniko's deprecated spellings, still accepted.
	snapshotModeOld, customPlatformOld, tarPathOld, bucket string
	whitelistVarRun                                        bool
}

func newFlagSet(c *config) *pflag.FlagSet {
	fs := pflag.NewFlagSet("executor", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.StringVarP(&c.dockerfile, "dockerfile", "f", "Dockerfile", "Path to the Dockerfile to build (relative paths are tried in the context too)")
	fs.StringVarP(&c.context, "context", "c", "/workspace/", "Build context: a directory (dir://PATH or a plain path), tar://PATH or tar://stdin (tar.gz or tar), https://...tar.gz, or git://HOST/REPO[#REF[#COMMIT]]")
	fs.StringVar(&c.contextSubPath, "context-sub-path", "", "Sub path within the given context")
	fs.StringArrayVarP(&c.destinations, "destination", "d", nil, "Registry the final image is pushed to; repeat for several")
	fs.BoolVar(&c.force, "force", false, "Build outside of a container (dangerous: the build takes over this machine's /)")
	fs.StringArrayVar(&c.buildArgs, "build-arg", nil, "Build-time variable NAME=VALUE (or NAME to take it from the environment); repeatable")
	fs.StringArrayVar(&c.labels, "label", nil, "Label KEY=VALUE to set on the final image; repeatable")
	fs.StringVar(&c.target, "target", "", "Stage to build (name or index); the last one by default")
	fs.StringVar(&c.customPlatform, "custom-platform", "", "Platform to build for, os/arch[/variant] (default: this machine's)")
	fs.BoolVar(&c.insecure, "insecure", false, "Push to insecure registries over plain HTTP")
	fs.BoolVar(&c.insecurePull, "insecure-pull", false, "Pull from insecure registries over plain HTTP")
	fs.BoolVar(&c.skipTLSVerify, "skip-tls-verify", false, "Push without verifying TLS certificates")
	fs.BoolVar(&c.skipTLSVerifyPull, "skip-tls-verify-pull", false, "Pull without verifying TLS certificates")
	fs.StringArrayVar(&c.insecureRegistries, "insecure-registry", nil, "Registry to use over plain HTTP; repeatable")
	fs.StringArrayVar(&c.skipTLSRegistries, "skip-tls-verify-registry", nil, "Registry whose TLS certificate is not verified; repeatable")
	fs.StringArrayVar(&c.registryCertificates, "registry-certificate", nil, "host=path of a CA certificate for that registry; repeatable")
	fs.StringArrayVar(&c.registryClientCerts, "registry-client-cert", nil, "host=cert,key client certificate for that registry; repeatable")
	fs.StringArrayVar(&c.registryMirrors, "registry-mirror", envList("KANIKO_REGISTRY_MIRROR"), "Mirror for Docker Hub images; repeatable")
	fs.StringArrayVar(&c.registryMaps, "registry-map", envList("KANIKO_REGISTRY_MAP"), "original=replacement registry rewrite; repeatable")
	fs.BoolVar(&c.skipDefaultRegistryFallback, "skip-default-registry-fallback", false, "Fail instead of falling back to Docker Hub when every mirror fails")
	fs.BoolVar(&c.noPush, "no-push", os.Getenv("KANIKO_NO_PUSH") == "true", "Build the image without pushing it")
	fs.BoolVar(&c.noPushCache, "no-push-cache", false, "Do not push cache layers")
	fs.StringVar(&c.tarPath, "tar-path", "", "Write the image as a tarball (docker load / skopeo compatible) to this path")
	fs.StringVar(&c.ociLayoutPath, "oci-layout-path", "", "Write the image to an OCI image layout at this path")
	fs.StringVar(&c.digestFile, "digest-file", "", "Write the image digest to this file")
	fs.StringVar(&c.imageNameDigestFile, "image-name-with-digest-file", "", "Write repo@digest of each destination to this file")
	fs.StringVar(&c.imageNameTagDigestFile, "image-name-tag-with-digest-file", "", "Write repo:tag@digest of each destination to this file")
	fs.BoolVar(&c.singleSnapshot, "single-snapshot", false, "Take one snapshot at the end of the build")
	fs.BoolVar(&c.reproducible, "reproducible", false, "Strip timestamps so the same inputs give the same digest")
	fs.StringVar(&c.snapshotMode, "snapshot-mode", "full", "How changes are found: full, redo or time (all use stat comparison here)")
	fs.BoolVar(&c.cleanup, "cleanup", false, "Clean the filesystem at the end of the build")
	fs.BoolVar(&c.ignoreVarRun, "ignore-var-run", true, "Leave /var/run out of the image")
	fs.StringArrayVar(&c.ignorePaths, "ignore-path", nil, "Path to leave out of the image and untouched; repeatable")
	fs.StringVar(&c.kanikoDir, "kaniko-dir", envOr("KANIKO_DIR", "/kaniko"), "The executor's own directory")
	fs.StringVarP(&c.verbosity, "verbosity", "v", "info", "Log level: trace, debug, info, warn, error, fatal, panic")
	fs.StringVar(&c.logFormat, "log-format", "color", "Log format: text, color or json")
	fs.BoolVar(&c.logTimestamp, "log-timestamp", false, "Timestamp every log line")
	fs.BoolVar(&c.skipUnusedStages, "skip-unused-stages", false, "Build only the stages the target needs (always done; accepted for compatibility)")
	fs.BoolVar(&c.forceBuildMetadata, "force-build-metadata", false, "Give metadata-only instructions a layer")
	fs.StringVar(&c.compression, "compression", "gzip", "Layer compression: gzip or zstd")
	fs.IntVar(&c.compressionLevel, "compression-level", -1, "Compression level (-1: the algorithm's default)")
	fs.BoolVar(&c.cache, "cache", false, "Cache RUN (and with --cache-copy-layers, COPY/ADD) layers in --cache-repo and base images in --cache-dir")
	fs.StringVar(&c.cacheRepo, "cache-repo", "", "Repository for cached layers (default: <first destination repository>/cache), or oci:DIR for an OCI layout")
	fs.StringVar(&c.cacheDir, "cache-dir", "/cache", "Local directory of cached base image layers (used with --cache)")
	fs.DurationVar(&c.cacheTTL, "cache-ttl", 336*time.Hour, "How long cached layers stay valid")
	fs.BoolVar(&c.cacheCopyLayers, "cache-copy-layers", false, "Cache COPY layers")
	fs.BoolVar(&c.cacheRunLayers, "cache-run-layers", true, "Cache RUN layers")
	fs.BoolVar(&c.compressedCaching, "compressed-caching", true, "Accepted for compatibility; cached layers are always stored compressed")
	fs.BoolVar(&c.useNewRun, "use-new-run", false, "Kaniko's experimental RUN snapshotting (accepted; our snapshots already work that way)")
	fs.IntVar(&c.pushRetry, "push-retry", 0, "Retries for pushing")
	fs.IntVar(&c.imageDownloadRetry, "image-download-retry", 0, "Retries for pulling base images")
	fs.IntVar(&c.imageFSExtractRetry, "image-fs-extract-retry", 0, "Retries for unpacking base images")
	fs.BoolVar(&c.pushIgnoreImmutableTagErrors, "push-ignore-immutable-tag-errors", false, "Treat a registry's immutable-tag refusal as success")
	fs.BoolVar(&c.skipPushPermissionCheck, "skip-push-permission-check", false, "Do not check push access before building")
	fs.StringArrayVar(&c.git, "git", nil, "Git context options, key=value (repeatable or comma-separated): branch=,single-branch=,recurse-submodules=,insecure-skip-tls=,depth=")
	fs.StringVar(&c.snapshotModeOld, "snapshotMode", "", "Deprecated: use --snapshot-mode")
	fs.StringVar(&c.customPlatformOld, "customPlatform", "", "Deprecated: use --custom-platform")
	fs.StringVar(&c.tarPathOld, "tarPath", "", "Deprecated: use --tar-path")
	fs.BoolVar(&c.whitelistVarRun, "whitelist-var-run", true, "Deprecated: use --ignore-var-run")
	fs.StringVarP(&c.bucket, "bucket", "b", "", "Deprecated: use --context gs://BUCKET/PATH")
	for _, name := range []string{"snapshotMode", "customPlatform", "tarPath", "whitelist-var-run"} {
		_ = fs.MarkDeprecated(name, "use the dashed spelling")
	}
	_ = fs.MarkHidden("bucket")
	return fs
}

// applyDeprecated copies Kaniko's deprecated flag spellings onto the current ones, as Kaniko
// does, and returns a warning for each one used.
func (c *config) applyDeprecated() []string {
	var warns []string
	if c.snapshotModeOld != "" {
		c.snapshotMode = c.snapshotModeOld
		warns = append(warns, "flag --snapshotMode is deprecated, use --snapshot-mode")
	}
	if c.customPlatformOld != "" {
		c.customPlatform = c.customPlatformOld
		warns = append(warns, "flag --customPlatform is deprecated, use --custom-platform")
	}
	if c.tarPathOld != "" {
		c.tarPath = c.tarPathOld
		warns = append(warns, "flag --tarPath is deprecated, use --tar-path")
	}
	if !c.whitelistVarRun {
		c.ignoreVarRun = false
		warns = append(warns, "flag --whitelist-var-run is deprecated, use --ignore-var-run")
	}
	if c.bucket != "" {
		if strings.Contains(c.bucket, "://") {
			c.context = c.bucket
		} else {
			c.context = "gs://" + c.bucket // Kaniko's default for a bare bucket name
		}
		warns = append(warns, "flag --bucket is deprecated, use --context")
	}
	return warns
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func envList(key string) []string {
	v := os.Getenv(key)
	if v == "" {
		return nil
	}
	var out []string
	for _, s := range strings.Split(v, ";") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// validate rejects flag values that cannot work, naming the flag.
func (c *config) validate() error {
	switch c.snapshotMode {
	case "full", "redo", "time":
	default:
		return fmt.Errorf("--snapshot-mode=%s: must be full, redo or time", c.snapshotMode)
	}
	switch c.compression {
	case "gzip", "zstd":
	default:
		return fmt.Errorf("--compression=%s: must be gzip or zstd", c.compression)
	}
	switch c.logFormat {
	case "text", "color", "json":
	default:
		return fmt.Errorf("--log-format=%s: must be text, color or json", c.logFormat)
	}
	if !c.noPush && len(c.destinations) == 0 && c.tarPath == "" && c.ociLayoutPath == "" {
		return fmt.Errorf("no --destination given: name one, or use --no-push")
	}
	for _, l := range c.labels {
		if !strings.Contains(l, "=") {
			return fmt.Errorf("--label %q: must be KEY=VALUE", l)
		}
	}
	if len(c.destinations) == 0 && c.imageNameDigestFile != "" {
		return fmt.Errorf("--image-name-with-digest-file needs a --destination to name the image")
	}
	if len(c.destinations) == 0 && c.imageNameTagDigestFile != "" {
		return fmt.Errorf("--image-name-tag-with-digest-file needs a --destination to name the image")
	}
	if c.cache && c.noPush && c.cacheRepo == "" {
		return fmt.Errorf("--cache with --no-push needs --cache-repo: the cache repository cannot be inferred from a destination")
	}
	return nil
}
