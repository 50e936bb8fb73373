package executor

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/kilnbuild/kiln/internal/units"
	"github.com/spf13/pflag"
)

// Config is every executor flag, with Kaniko's names and defaults. NewFlagSet binds a Config to
// the command line; ParseFlags does that, applies Kaniko's deprecated spellings and checks it.
type Config struct {
	Dockerfile     string   // --dockerfile, -f
	Context        string   // --context, -c
	ContextSubPath string   // --context-sub-path
	Destinations   []string // --destination, -d (repeatable)
	Force          bool     // --force: build into / outside a container
	BuildArgs      []string // --build-arg NAME=VALUE or NAME (repeatable)
	Labels         []string // --label KEY=VALUE (repeatable)
	Target         string   // --target
	CustomPlatform string   // --custom-platform
	Secrets        []string // --secret id=NAME,src=PATH|env=VAR (repeatable)
	SSH            []string // --ssh default|ID=SOCKET|ID=KEY[,KEY] (repeatable)
	BuildContexts  []string // --build-context NAME=VALUE (repeatable)

	Insecure                    bool     // --insecure (push)
	InsecurePull                bool     // --insecure-pull
	SkipTLSVerify               bool     // --skip-tls-verify (push)
	SkipTLSVerifyPull           bool     // --skip-tls-verify-pull
	InsecureRegistries          []string // --insecure-registry
	SkipTLSVerifyRegistries     []string // --skip-tls-verify-registry
	RegistryCertificates        []string // --registry-certificate host=path
	RegistryClientCerts         []string // --registry-client-cert host=cert,key
	RegistryMirrors             []string // --registry-mirror (default: KANIKO_REGISTRY_MIRROR)
	RegistryMaps                []string // --registry-map (default: KANIKO_REGISTRY_MAP)
	SkipDefaultRegistryFallback bool     // --skip-default-registry-fallback

	NoPush                 bool   // --no-push (default: KANIKO_NO_PUSH=true)
	NoPushCache            bool   // --no-push-cache
	TarPath                string // --tar-path
	OCILayoutPath          string // --oci-layout-path
	DigestFile             string // --digest-file
	ImageNameDigestFile    string // --image-name-with-digest-file
	ImageNameTagDigestFile string // --image-name-tag-with-digest-file
	Timings                string // --timings FILE: per stage and instruction times (package timings)

	SingleSnapshot     bool     // --single-snapshot
	Reproducible       bool     // --reproducible
	SnapshotMode       string   // --snapshot-mode
	Cleanup            bool     // --cleanup
	IgnoreVarRun       bool     // --ignore-var-run
	IgnorePaths        []string // --ignore-path
	KanikoDir          string   // --kaniko-dir (default: KANIKO_DIR, then /kaniko)
	Verbosity          string   // --verbosity, -v
	LogFormat          string   // --log-format
	LogTimestamp       bool     // --log-timestamp
	SkipUnusedStages   bool     // --skip-unused-stages (always done)
	ForceBuildMetadata bool     // --force-build-metadata
	Compression        string   // --compression
	CompressionLevel   int      // --compression-level
	MaxParallelStages  int      // --max-parallel-stages

	Cache             bool          // --cache
	CacheCopyLayers   bool          // --cache-copy-layers
	CacheRunLayers    bool          // --cache-run-layers
	CompressedCaching bool          // --compressed-caching (no effect)
	CacheRepo         string        // --cache-repo
	CacheDir          string        // --cache-dir
	cacheDirGiven     bool          // --cache-dir was on the command line (ParseFlags)
	CacheTTL          time.Duration // --cache-ttl
	CacheDirMaxSize   string        // --cache-dir-max-size ("": no bound)
	CacheDirLayers    bool          // --cache-dir-layers

	UseNewRun                    bool     // --use-new-run (no effect)
	PushRetry                    int      // --push-retry
	ImageDownloadRetry           int      // --image-download-retry
	ImageFSExtractRetry          int      // --image-fs-extract-retry
	PushIgnoreImmutableTagErrors bool     // --push-ignore-immutable-tag-errors
	SkipPushPermissionCheck      bool     // --skip-push-permission-check
	Git                          []string // --git key=value[,key=value] (repeatable)

	// Kaniko's deprecated spellings, still accepted; ApplyDeprecated copies them over.
	SnapshotModeOld, CustomPlatformOld, TarPathOld, Bucket string
	WhitelistVarRun                                        bool

	// Warnings holds ParseFlags' deprecation warnings, for the caller to log.
	Warnings []string
}

// DefaultKanikoDir is where Kaniko's image (and ours) keeps the executor, its certificates and
// the registry credentials.
const DefaultKanikoDir = "/kaniko"

// ParseFlags parses args as the executor's command line (without the program name), applies
// Kaniko's deprecated spellings (their warnings are in Warnings) and checks the values. Errors
// name the flag at fault. Defaults that Kaniko takes from the environment (KANIKO_DIR,
// KANIKO_NO_PUSH, KANIKO_REGISTRY_MIRROR, KANIKO_REGISTRY_MAP) are read from this process's.
func ParseFlags(args []string) (*Config, error) {
	c := &Config{}
	fs := NewFlagSet(c)
	if err := parseFlagSet(fs, args, "the executor takes flags only"); err != nil {
		return nil, err
	}
	c.Warnings = c.ApplyDeprecated()
	c.cacheDirGiven = fs.Changed("cache-dir")
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// parseFlagSet parses args with fs, which takes flags only: a positional argument is an error,
// whose text ends with flagsOnly. Usage and errors are not printed.
func parseFlagSet(fs *pflag.FlagSet, args []string, flagsOnly string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: %s", fs.Arg(0), flagsOnly)
	}
	return nil
}

// DefaultCacheDir is --cache-dir's default, Kaniko's: a build pod's cache volume. In directory
// mode it is used only when given explicitly (see Run).
const DefaultCacheDir = "/cache"

// NewFlagSet returns the executor's flag set bound to c, with Kaniko's names, shorthands and
// defaults, and its deprecated spellings (hidden from usage, still accepted).
func NewFlagSet(c *Config) *pflag.FlagSet {
	fs := pflag.NewFlagSet("executor", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.StringVarP(&c.Dockerfile, "dockerfile", "f", "Dockerfile", "Path to the Dockerfile to build (relative paths are tried in the context too)")
	fs.StringVarP(&c.Context, "context", "c", "/workspace/", "Build context: a directory (dir://PATH or a plain path), tar://PATH or tar://stdin (tar.gz or tar), https://...tar.gz, or git://HOST/REPO[#REF[#COMMIT]]")
	fs.StringVar(&c.ContextSubPath, "context-sub-path", "", "Sub path within the given context")
	fs.StringArrayVarP(&c.Destinations, "destination", "d", nil, "Registry the final image is pushed to; repeat for several")
	fs.BoolVar(&c.Force, "force", false, "Build outside of a container (dangerous: the build takes over this machine's /)")
	fs.StringArrayVar(&c.BuildArgs, "build-arg", nil, "Build-time variable NAME=VALUE (or NAME to take it from the environment); repeatable")
	fs.StringArrayVar(&c.Labels, "label", nil, "Label KEY=VALUE to set on the final image; repeatable")
	fs.StringVar(&c.Target, "target", "", "Stage to build (name or index); the last one by default")
	fs.StringVar(&c.CustomPlatform, "custom-platform", "", "Platform to build for, os/arch[/variant] (default: this machine's)")
	fs.StringArrayVar(&c.Secrets, "secret", nil, "Secret for RUN --mount=type=secret: id=NAME,src=PATH or id=NAME,env=VAR (BuildKit's syntax); repeatable")
	fs.StringArrayVar(&c.SSH, "ssh", nil, "ssh agent for RUN --mount=type=ssh (and, as default, for ADD of an ssh Git URL): default ($SSH_AUTH_SOCK), or ID=SOCKET, or ID=KEYFILE[,KEYFILE]; repeatable")
	fs.StringArrayVar(&c.BuildContexts, "build-context", nil, "Named context NAME=VALUE for FROM NAME and COPY --from=NAME (BuildKit's): dir:///path, docker-image://REF, oci-layout:///path[@DIGEST|:TAG], a Git URL or an https archive; repeatable")
	addRegistryFlags(fs, c)
	addOutputFlags(fs, c)
	addBuildFlags(fs, c)
	addCacheFlags(fs, c)
	addDeprecatedFlags(fs, c)
	return fs
}

func addRegistryFlags(fs *pflag.FlagSet, c *Config) {
	addRegistryTLSFlags(fs, c, registryFlagHelp{
		insecure:      "Push to insecure registries over plain HTTP",
		skipTLSVerify: "Push without verifying TLS certificates",
		fallback:      "Fail instead of falling back to Docker Hub when every mirror fails",
	})
	fs.BoolVar(&c.NoPush, "no-push", os.Getenv("KANIKO_NO_PUSH") == "true", "Build the image without pushing it")
	fs.BoolVar(&c.NoPushCache, "no-push-cache", false, "Do not push cache layers")
}

// registryFlagHelp holds the help texts of the registry flags that differ between the executor,
// which pushes, and the warmer, which only pulls.
type registryFlagHelp struct {
	insecure, skipTLSVerify, fallback string
}

// addRegistryTLSFlags registers the registry and TLS flags the executor and the warmer share
// (--insecure ... --skip-default-registry-fallback), bound to c.
func addRegistryTLSFlags(fs *pflag.FlagSet, c *Config, help registryFlagHelp) {
	fs.BoolVar(&c.Insecure, "insecure", false, help.insecure)
	fs.BoolVar(&c.InsecurePull, "insecure-pull", false, "Pull from insecure registries over plain HTTP")
	fs.BoolVar(&c.SkipTLSVerify, "skip-tls-verify", false, help.skipTLSVerify)
	fs.BoolVar(&c.SkipTLSVerifyPull, "skip-tls-verify-pull", false, "Pull without verifying TLS certificates")
	fs.StringArrayVar(&c.InsecureRegistries, "insecure-registry", nil, "Registry to use over plain HTTP; repeatable")
	fs.StringArrayVar(&c.SkipTLSVerifyRegistries, "skip-tls-verify-registry", nil, "Registry whose TLS certificate is not verified; repeatable")
	fs.StringArrayVar(&c.RegistryCertificates, "registry-certificate", nil, "host=path of a CA certificate for that registry; repeatable")
	fs.StringArrayVar(&c.RegistryClientCerts, "registry-client-cert", nil, "host=cert,key client certificate for that registry; repeatable")
	fs.StringArrayVar(&c.RegistryMirrors, "registry-mirror", envList(envRegistryMirror), "Mirror for Docker Hub images; repeatable")
	fs.StringArrayVar(&c.RegistryMaps, "registry-map", envList(envRegistryMap), "original=replacement registry rewrite; repeatable")
	fs.BoolVar(&c.SkipDefaultRegistryFallback, "skip-default-registry-fallback", false, help.fallback)
}

// addLogFlags registers --verbosity (-v), --log-format and --log-timestamp, shared by the
// executor and the warmer.
func addLogFlags(fs *pflag.FlagSet, verbosity, format *string, timestamp *bool) {
	fs.StringVarP(verbosity, "verbosity", "v", "info", "Log level: trace, debug, info, warn, error, fatal, panic")
	fs.StringVar(format, "log-format", "color", "Log format: text, color or json")
	fs.BoolVar(timestamp, "log-timestamp", false, "Timestamp every log line")
}

// validateLogFormat checks a --log-format value.
func validateLogFormat(format string) error {
	switch format {
	case "text", "color", "json":
		return nil
	}
	return fmt.Errorf("--log-format=%s: must be text, color or json", format)
}

func addOutputFlags(fs *pflag.FlagSet, c *Config) {
	fs.StringVar(&c.TarPath, "tar-path", "", "Write the image as a tarball (docker load / skopeo compatible) to this path")
	fs.StringVar(&c.OCILayoutPath, "oci-layout-path", "", "Write the image to an OCI image layout at this path")
	fs.StringVar(&c.DigestFile, "digest-file", "", "Write the image digest to this file")
	fs.StringVar(&c.ImageNameDigestFile, "image-name-with-digest-file", "", "Write repo@digest of each destination to this file")
	fs.StringVar(&c.ImageNameTagDigestFile, "image-name-tag-with-digest-file", "", "Write repo:tag@digest of each destination to this file")
	fs.StringVar(&c.Timings, "timings", "", "Write each stage's and instruction's pull, unpack, execute, snapshot, compress and push times to this file: a Chrome trace (open it in Perfetto) with a plain JSON summary under \"timings\"")
}

func addBuildFlags(fs *pflag.FlagSet, c *Config) {
	fs.BoolVar(&c.SingleSnapshot, "single-snapshot", false, "Take one snapshot at the end of the build")
	fs.BoolVar(&c.Reproducible, "reproducible", false, "Strip timestamps so the same inputs give the same digest")
	fs.StringVar(&c.SnapshotMode, "snapshot-mode", "full", "How changes are found: full, redo or time (all use stat comparison here)")
	fs.BoolVar(&c.Cleanup, "cleanup", false, "Clean the filesystem at the end of the build")
	fs.BoolVar(&c.IgnoreVarRun, "ignore-var-run", true, "Leave /var/run out of the image")
	fs.StringArrayVar(&c.IgnorePaths, "ignore-path", nil, "Path to leave out of the image and untouched; repeatable")
	fs.StringVar(&c.KanikoDir, "kaniko-dir", envOr("KANIKO_DIR", DefaultKanikoDir), "The executor's own directory")
	addLogFlags(fs, &c.Verbosity, &c.LogFormat, &c.LogTimestamp)
	fs.BoolVar(&c.SkipUnusedStages, "skip-unused-stages", false, "Build only the stages the target needs (always done; accepted for compatibility)")
	fs.BoolVar(&c.ForceBuildMetadata, "force-build-metadata", false, "Give metadata-only instructions a layer")
	fs.StringVar(&c.Compression, "compression", "gzip", "Layer compression: gzip or zstd")
	fs.IntVar(&c.CompressionLevel, "compression-level", -1, "Compression level (-1: the algorithm's default)")
	fs.IntVar(&c.MaxParallelStages, "max-parallel-stages", 2, "Stages that do not depend on each other run at the same time, up to this many (1: one after another); their RUN output lines are prefixed with the stage name")
}

func addCacheFlags(fs *pflag.FlagSet, c *Config) {
	fs.BoolVar(&c.Cache, "cache", false, "Cache RUN (and with --cache-copy-layers, COPY/ADD) layers in --cache-repo and base images in --cache-dir")
	fs.StringVar(&c.CacheRepo, "cache-repo", "", "Repository for cached layers (default: <first destination repository>/cache), or oci:DIR for an OCI layout")
	fs.StringVar(&c.CacheDir, "cache-dir", DefaultCacheDir, "Local directory (a persistent volume) of cached base image layers and, in <dir>/layercache, of the layers built (both used with --cache, looked up before --cache-repo), and, in <dir>/mounts, of RUN --mount=type=cache directories")
	fs.BoolVar(&c.CacheDirLayers, "cache-dir-layers", true, "With --cache, keep the layers built in <cache-dir>/layercache too (false: only base images)")
	fs.StringVar(&c.CacheDirMaxSize, "cache-dir-max-size", "", "Bound on --cache-dir's cached layers and base images (e.g. 10GB, 500MiB): after a build, the least recently used layers go first")
	fs.DurationVar(&c.CacheTTL, "cache-ttl", 336*time.Hour, "How long cached layers stay valid")
	fs.BoolVar(&c.CacheCopyLayers, "cache-copy-layers", false, "Cache COPY layers")
	fs.BoolVar(&c.CacheRunLayers, "cache-run-layers", true, "Cache RUN layers")
	fs.BoolVar(&c.CompressedCaching, "compressed-caching", true, "Accepted for compatibility; cached layers are always stored compressed")
	fs.BoolVar(&c.UseNewRun, "use-new-run", false, "Kaniko's experimental RUN snapshotting (accepted; our snapshots already work that way)")
	fs.IntVar(&c.PushRetry, "push-retry", 0, "Retries for pushing")
	fs.IntVar(&c.ImageDownloadRetry, "image-download-retry", 0, "Retries for pulling base images")
	fs.IntVar(&c.ImageFSExtractRetry, "image-fs-extract-retry", 0, "Retries for unpacking base images")
	fs.BoolVar(&c.PushIgnoreImmutableTagErrors, "push-ignore-immutable-tag-errors", false, "Treat a registry's immutable-tag refusal as success")
	fs.BoolVar(&c.SkipPushPermissionCheck, "skip-push-permission-check", false, "Do not check push access before building")
	fs.StringArrayVar(&c.Git, "git", nil, "Git context options, key=value (repeatable or comma-separated): branch=,single-branch=,recurse-submodules=,insecure-skip-tls=,depth=")
}

func addDeprecatedFlags(fs *pflag.FlagSet, c *Config) {
	fs.StringVar(&c.SnapshotModeOld, "snapshotMode", "", "Deprecated: use --snapshot-mode")
	fs.StringVar(&c.CustomPlatformOld, "customPlatform", "", "Deprecated: use --custom-platform")
	fs.StringVar(&c.TarPathOld, "tarPath", "", "Deprecated: use --tar-path")
	fs.BoolVar(&c.WhitelistVarRun, "whitelist-var-run", true, "Deprecated: use --ignore-var-run")
	fs.StringVarP(&c.Bucket, "bucket", "b", "", "Deprecated: use --context gs://BUCKET/PATH")
	for _, name := range []string{"snapshotMode", "customPlatform", "tarPath", "whitelist-var-run"} {
		_ = fs.MarkDeprecated(name, "use the dashed spelling")
	}
	_ = fs.MarkHidden("bucket")
}

// ApplyDeprecated copies Kaniko's deprecated flag spellings onto the current ones, as Kaniko
// does, and returns a warning for each one used.
func (c *Config) ApplyDeprecated() []string {
	var warns []string
	if c.SnapshotModeOld != "" {
		c.SnapshotMode = c.SnapshotModeOld
		warns = append(warns, "flag --snapshotMode is deprecated, use --snapshot-mode")
	}
	if c.CustomPlatformOld != "" {
		c.CustomPlatform = c.CustomPlatformOld
		warns = append(warns, "flag --customPlatform is deprecated, use --custom-platform")
	}
	if c.TarPathOld != "" {
		c.TarPath = c.TarPathOld
		warns = append(warns, "flag --tarPath is deprecated, use --tar-path")
	}
	if !c.WhitelistVarRun {
		c.IgnoreVarRun = false
		warns = append(warns, "flag --whitelist-var-run is deprecated, use --ignore-var-run")
	}
	if c.Bucket != "" {
		if strings.Contains(c.Bucket, "://") {
			c.Context = c.Bucket
		} else {
			c.Context = "gs://" + c.Bucket // Kaniko's default for a bare bucket name
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

// Validate rejects flag values that cannot work, naming the flag.
func (c *Config) Validate() error {
	switch c.SnapshotMode {
	case "full", "redo", "time":
	default:
		return fmt.Errorf("--snapshot-mode=%s: must be full, redo or time", c.SnapshotMode)
	}
	switch c.Compression {
	case "gzip", "zstd":
	default:
		return fmt.Errorf("--compression=%s: must be gzip or zstd", c.Compression)
	}
	if err := validateLogFormat(c.LogFormat); err != nil {
		return err
	}
	if !c.NoPush && len(c.Destinations) == 0 && c.TarPath == "" && c.OCILayoutPath == "" {
		return fmt.Errorf("no --destination given: name one, or use --no-push")
	}
	for _, l := range c.Labels {
		if !strings.Contains(l, "=") {
			return fmt.Errorf("--label %q: must be KEY=VALUE", l)
		}
	}
	if err := c.validateMountFlags(); err != nil {
		return err
	}
	if err := c.validateBuildContexts(); err != nil {
		return err
	}
	return c.validateOutputs()
}

func (c *Config) validateOutputs() error {
	if len(c.Destinations) == 0 && c.ImageNameDigestFile != "" {
		return fmt.Errorf("--image-name-with-digest-file needs a --destination to name the image")
	}
	if len(c.Destinations) == 0 && c.ImageNameTagDigestFile != "" {
		return fmt.Errorf("--image-name-tag-with-digest-file needs a --destination to name the image")
	}
	if c.Cache && c.NoPush && c.CacheRepo == "" && (c.CacheDir == "" || !c.CacheDirLayers) {
		return fmt.Errorf("--cache with --no-push needs --cache-repo or --cache-dir: the cache repository cannot be inferred from a destination")
	}
	if c.CacheDirMaxSize != "" {
		if _, err := units.ParseBytes(c.CacheDirMaxSize); err != nil {
			return fmt.Errorf("--cache-dir-max-size: %w", err)
		}
	}
	return nil
}
