package executor

import (
	"io"
	"os"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/kilnbuild/kiln/builder"
)

// Option configures Run.
type Option func(*runOptions)

type runOptions struct {
	rootSet   bool
	podMode   bool
	root      string // directory mode
	workDir   string // directory mode; "" = the builder's default next to the root
	log       Log
	reporter  builder.Reporter
	output    io.Writer
	stdin     io.Reader
	keychain  authn.Keychain
	lookupEnv func(string) (string, bool)
}

// WithPodRoot builds into "/" of the container Run runs in, as Kaniko's executor (and
// cmd/executor) does: the base image is unpacked over it, and the executor's own directory
// (--kaniko-dir), every mount point, --ignore-path entries and /var/run are left alone.
// Unless Config.Force is set, Run refuses to do so where CheckPodLike fails.
func WithPodRoot() Option {
	return func(o *runOptions) { o.rootSet, o.podMode, o.root = true, true, "/" }
}

// WithDirectoryRoot builds into dir: base images are unpacked into it and RUN executes chrooted
// into it in its own namespaces. Nothing outside dir, the work directory and the outputs the
// flags name changes; --kaniko-dir is not used (a tar or git context is unpacked into a
// temporary directory of this run, removed after it).
func WithDirectoryRoot(dir string) Option {
	return func(o *runOptions) { o.rootSet, o.podMode, o.root = true, false, dir }
}

// WithWorkDir sets where a directory-mode build keeps its layers (see builder.WithWorkDir);
// it must be outside the root. Pod mode uses --kaniko-dir.
func WithWorkDir(dir string) Option { return func(o *runOptions) { o.workDir = dir } }

// WithLogger sends Run's own messages to l. By default they go to a Logger on standard error
// made from the config's --log-format, --verbosity and --log-timestamp.
func WithLogger(l Log) Option { return func(o *runOptions) { o.log = l } }

// WithReporter sends the builder's events to r instead of rendering them onto the logger
// (ReportTo), so a caller can count or forward them.
func WithReporter(r builder.Reporter) Option { return func(o *runOptions) { o.reporter = r } }

// WithOutput sends RUN's standard output and error to w. By default each line is an event
// (builder.EventOutput), which a Logger logs.
func WithOutput(w io.Writer) Option { return func(o *runOptions) { o.output = w } }

// WithStdin sets what --context=tar://stdin reads (default: nothing).
func WithStdin(r io.Reader) Option { return func(o *runOptions) { o.stdin = r } }

// WithKeychain sets where registry credentials come from, for pulls, pushes and the cache
// (default authn.DefaultKeychain: $DOCKER_CONFIG/config.json, as the executor reads it).
func WithKeychain(kc authn.Keychain) Option { return func(o *runOptions) { o.keychain = kc } }

// WithDockerConfig reads registry credentials from dir/config.json (the format of Docker's
// config and of a docker-registry Secret, credential helpers included) instead of
// $DOCKER_CONFIG, without changing the process's environment.
func WithDockerConfig(dir string) Option {
	return func(o *runOptions) { o.keychain = DockerConfigKeychain(dir) }
}

// WithLookupEnv sets the environment the build reads: --build-arg NAME without a value,
// KANIKO_REGISTRY_MIRROR and KANIKO_REGISTRY_MAP, and Kaniko's GIT_* variables (default
// os.LookupEnv). Flag defaults come from the process environment when the flags are parsed.
func WithLookupEnv(lookup func(string) (string, bool)) Option {
	return func(o *runOptions) { o.lookupEnv = lookup }
}

func makeRunOptions(c *Config, opts []Option) (*runOptions, error) {
	o := &runOptions{lookupEnv: os.LookupEnv}
	for _, opt := range opts {
		opt(o)
	}
	if o.log == nil {
		l, err := NewLogger(os.Stderr, c.LogFormat, c.Verbosity, c.LogTimestamp)
		if err != nil {
			return nil, err
		}
		o.log = l
	}
	if o.reporter == nil {
		o.reporter = ReportTo(o.log)
	}
	return o, nil
}

func (o *runOptions) getenv(key string) string {
	v, _ := o.lookupEnv(key)
	return v
}
