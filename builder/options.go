package builder

import (
	"io"

	"github.com/kilnbuild/kiln/buildcontext"
	"github.com/kilnbuild/kiln/cache"
	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/registry"
	"github.com/kilnbuild/kiln/snapshot"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Option configures a Build.
type Option func(*options)

type options struct {
	root               string // "/" in pod mode, a directory otherwise
	podMode            bool
	kanikoDir          string // pod mode: the builder's own directory (never touched by the build)
	workDir            string // where layers and saved stages are kept
	contextDir         string
	buildArgs          dockerfile.BuildArgs
	target             string
	platform           *ocispec.Platform
	labels             map[string]string
	pull               []registry.Option
	reporter           Reporter
	output             io.Writer // RUN stdout/stderr; nil: EventOutput per line
	ignorePaths        []string
	ignoreVarRun       bool
	singleSnapshot     bool
	reproducible       bool
	snapshotMode       string
	compression        snapshot.Compression
	cleanup            bool
	forceBuildMetadata bool
	skipUnusedStages   bool
	extractRetries     int
	cache              *cacheConfig     // nil: no layer cache
	baseCache          *cache.BaseCache // nil: base layers are always pulled
	runCacheDir        string           // RUN --mount=type=cache directories; "": <workDir>/cache-mounts
	secrets            map[string]Secret
	ssh                map[string]SSHAgent
	git                buildcontext.GitOptions // credentials and TLS for Git sources
	buildContexts      []BuildContext          // --build-context
	parallelStages     int                     // stages run at once; <1: defaultParallelStages
	stateCache         *stateCache             // kept unpacked layers (rootstate.go); nil: none
}

func defaults() options {
	return options{
		root:             "",
		kanikoDir:        "/kaniko",
		contextDir:       ".",
		reporter:         discard{},
		ignoreVarRun:     true,
		snapshotMode:     "full",
		skipUnusedStages: true,
	}
}

// WithDirectoryRoot builds into dir: base images are unpacked into it and RUN executes chrooted
// into it in new namespaces. The host's "/" is never touched.
func WithDirectoryRoot(dir string) Option {
	return func(o *options) { o.root, o.podMode = dir, false }
}

// WithPodRoot builds into "/", as Kaniko does inside a build pod. kanikoDir is the builder's own
// directory ("/kaniko" by default), kept out of the image like every mount point.
// Only use it inside a throwaway container.
func WithPodRoot(kanikoDir string) Option {
	return func(o *options) {
		o.root, o.podMode = "/", true
		if kanikoDir != "" {
			o.kanikoDir = kanikoDir
		}
	}
}

// WithWorkDir sets where layers and saved stage filesystems are written; it must be outside the
// root. In pod mode the default is <kanikoDir>; in directory mode it is "<root>.kiln-work" next
// to the root. A directory-mode build empties it first; the caller removes it when done with
// the image.
func WithWorkDir(dir string) Option { return func(o *options) { o.workDir = dir } }

// WithContextDir sets the build context directory (default ".").
func WithContextDir(dir string) Option { return func(o *options) { o.contextDir = dir } }

// WithBuildArgs sets the --build-arg values.
func WithBuildArgs(args dockerfile.BuildArgs) Option { return func(o *options) { o.buildArgs = args } }

// WithTarget builds the named stage (or index) instead of the last one.
func WithTarget(stage string) Option { return func(o *options) { o.target = stage } }

// WithPlatform sets the platform to build for (base images are resolved to it).
func WithPlatform(p ocispec.Platform) Option { return func(o *options) { o.platform = &p } }

// WithLabels adds labels to the final image's config (--label).
func WithLabels(l map[string]string) Option {
	return func(o *options) {
		if o.labels == nil {
			o.labels = map[string]string{}
		}
		for k, v := range l {
			o.labels[k] = v
		}
	}
}

// WithPullOptions sets how base images (and COPY --from images) are pulled.
func WithPullOptions(opts ...registry.Option) Option {
	return func(o *options) { o.pull = append(o.pull, opts...) }
}

// WithReporter sends the build's events to r.
func WithReporter(r Reporter) Option { return func(o *options) { o.reporter = r } }

// WithOutput sets where RUN output (stdout and stderr) goes. By default each line goes to the
// Reporter as an EventOutput instead, so the library never prints on its own.
func WithOutput(w io.Writer) Option { return func(o *options) { o.output = w } }

// WithIgnorePaths adds image paths that are never snapshotted, deleted or overwritten (pod mode).
func WithIgnorePaths(paths ...string) Option {
	return func(o *options) { o.ignorePaths = append(o.ignorePaths, paths...) }
}

// WithIgnoreVarRun sets whether /var/run is ignored in pod mode (default true, as Kaniko).
func WithIgnoreVarRun(on bool) Option { return func(o *options) { o.ignoreVarRun = on } }

// WithSingleSnapshot takes one snapshot at the end of each stage instead of one per instruction.
func WithSingleSnapshot(on bool) Option { return func(o *options) { o.singleSnapshot = on } }

// WithReproducible strips timestamps from layers and the config so the same inputs give the same digest.
func WithReproducible(on bool) Option { return func(o *options) { o.reproducible = on } }

// WithSnapshotMode accepts Kaniko's --snapshot-mode (full, redo, time). All three use the same
// stat-based comparison here, which sees every change "full" would and costs what "time" costs.
func WithSnapshotMode(mode string) Option { return func(o *options) { o.snapshotMode = mode } }

// WithCompression sets the layer compression (gzip by default, or zstd) and level.
func WithCompression(c snapshot.Compression) Option { return func(o *options) { o.compression = c } }

// WithCleanup clears the root (except ignored paths) after the build, as Kaniko's --cleanup.
func WithCleanup(on bool) Option { return func(o *options) { o.cleanup = on } }

// WithForceBuildMetadata gives metadata-only instructions a layer of their own, as Kaniko's
// --force-build-metadata.
func WithForceBuildMetadata(on bool) Option { return func(o *options) { o.forceBuildMetadata = on } }

// WithSkipUnusedStages builds only the stages the target needs (default true). When false, every
// stage up to the target is built, as Kaniko does without --skip-unused-stages.
func WithSkipUnusedStages(on bool) Option { return func(o *options) { o.skipUnusedStages = on } }

// WithExtractRetries retries unpacking a base image up to n more times, from a cleared root,
// when it fails part-way (a dropped connection mid-layer), as Kaniko's --image-fs-extract-retry.
func WithExtractRetries(n int) Option { return func(o *options) { o.extractRetries = n } }

// WithRunCacheDir keeps the directories of RUN --mount=type=cache in dir, one per cache id,
// so later builds with the same dir find them (the executor uses <--cache-dir>/mounts, a
// pod's persistent volume). Builds, and processes, sharing dir coordinate through file locks
// there (sharing=locked and private). The default is <work dir>/cache-mounts, which later
// builds with the same work dir find too. In pod mode dir must be a mounted volume or lie
// below the executor's directory, or it would be snapshotted: otherwise the default is used,
// with a warning. Nothing of a cache mount ever enters a layer.
func WithRunCacheDir(dir string) Option { return func(o *options) { o.runCacheDir = dir } }

// defaultParallelStages is how many stages run at once unless WithParallelStages says
// otherwise: two keeps a build pod's two cores busy while one stage waits on a pull, a RUN or
// a push-free snapshot, without multiplying its disk use.
const defaultParallelStages = 2

// WithParallelStages runs up to n of the stages the target needs at the same time (default 2):
// a stage starts as soon as the stages it builds on or copies from are done. The first stage
// not yet started in order runs in the root, as in a sequential build; others run in
// directory roots of their own in the work directory (in pod mode there, chrooted). Each
// stage's RUN output lines are then prefixed with its name ("[build] "), and the image is the
// one a sequential build makes. 1 builds the stages one after another; n < 1 means the default.
func WithParallelStages(n int) Option { return func(o *options) { o.parallelStages = n } }
