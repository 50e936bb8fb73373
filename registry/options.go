package registry

import (
	"net/http"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Option configures one Pull, Push or CheckPushAccess call.
type Option func(*options)

// clientCert is a client certificate/key pair for mutual TLS with one registry.
type clientCert struct {
	certPath, keyPath string
}

// options is the resolved configuration of one call. It is built fresh by
// makeOptions for every call, so nothing leaks between builds.
type options struct {
	keychain  authn.Keychain
	platform  v1.Platform
	transport http.RoundTripper
	userAgent string
	jobs      int
	progress  chan<- v1.Update

	retries    int
	retryDelay time.Duration

	insecureAll   bool
	insecure      hostSet
	skipVerifyAll bool
	skipVerify    hostSet
	caCerts       map[string][]string   // registry -> CA bundle paths
	clientCerts   map[string]clientCert // registry -> client cert pair

	registryMap     map[string][]string // registry -> replacements, tried in order
	skipFallback    bool
	ignoreImmutable bool
	replaceTags     bool
	hostCreds       map[string]authn.AuthConfig // user info given in mirror and map specs, by host
}

// Defaults, chosen to match go-containerregistry's own (three attempts).
const (
	defaultRetries    = 2
	defaultRetryDelay = time.Second
	defaultJobs       = 4
)

func makeOptions(opts []Option) *options {
	o := &options{
		keychain:    authn.DefaultKeychain,
		platform:    v1.Platform{OS: "linux", Architecture: runtime.GOARCH},
		jobs:        defaultJobs,
		retries:     defaultRetries,
		retryDelay:  defaultRetryDelay,
		insecure:    hostSet{},
		skipVerify:  hostSet{},
		caCerts:     map[string][]string{},
		clientCerts: map[string]clientCert{},
		registryMap: map[string][]string{},
	}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	return o
}

// WithKeychain sets where credentials come from. The default,
// authn.DefaultKeychain, reads $DOCKER_CONFIG/config.json including
// credHelpers and credsStore.
func WithKeychain(kc authn.Keychain) Option {
	return func(o *options) {
		if kc != nil {
			o.keychain = kc
		}
	}
}

// WithPlatform picks this platform when a pulled reference is an index.
// The default is linux on the running architecture.
func WithPlatform(p v1.Platform) Option {
	return func(o *options) { o.platform = p }
}

// WithInsecure allows plain HTTP to these registries (exact host[:port],
// "docker.io" and "index.docker.io" are the same registry).
func WithInsecure(registries ...string) Option {
	return func(o *options) { o.insecure.add(registries...) }
}

// WithInsecureAll allows plain HTTP to every registry. The CLI maps
// --insecure onto the push options and --insecure-pull onto the pull options.
func WithInsecureAll(on bool) Option {
	return func(o *options) { o.insecureAll = on }
}

// WithSkipTLSVerify disables certificate verification for these registries.
func WithSkipTLSVerify(registries ...string) Option {
	return func(o *options) { o.skipVerify.add(registries...) }
}

// WithSkipTLSVerifyAll disables certificate verification for every registry
// (--skip-tls-verify on the push side, --skip-tls-verify-pull on the pull side).
func WithSkipTLSVerifyAll(on bool) Option {
	return func(o *options) { o.skipVerifyAll = on }
}

// WithTransport sets the base transport. TLS settings are applied to a clone
// of it when it is an *http.Transport; retries and auth are layered on top.
func WithTransport(rt http.RoundTripper) Option {
	return func(o *options) { o.transport = rt }
}

// WithRetries sets how many times a request failing with a 5xx, 408, 429, a
// network timeout, a reset connection or a refused one (a registry restarting)
// is retried, with exponential backoff. Zero disables retries.
func WithRetries(n int) Option {
	return func(o *options) { o.retries = max(n, 0) }
}

// WithRetryDelay sets the first backoff delay between retries (default 1s);
// each further delay is three times longer.
func WithRetryDelay(d time.Duration) Option {
	return func(o *options) { o.retryDelay = max(d, time.Millisecond) }
}

// WithProgress receives upload progress while pushing. The channel is closed
// when Push returns; its last update carries Push's error, if any.
func WithProgress(ch chan<- v1.Update) Option {
	return func(o *options) { o.progress = ch }
}

// WithUserAgent sets the User-Agent sent to registries.
func WithUserAgent(ua string) Option {
	return func(o *options) { o.userAgent = ua }
}

// WithJobs sets how many blobs are uploaded concurrently (default 4).
func WithJobs(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.jobs = n
		}
	}
}

// WithMirrors adds pull-through mirrors for Docker Hub (--registry-mirror).
// Each is a host[:port] optionally followed by a path prefix
// ("mirror.example.com/dockerhub"); they are tried in order before Docker Hub.
// A mirror written as a URL with user info ("https://user:token@mirror.example.com")
// is reached with those credentials, which no message ever shows.
func WithMirrors(mirrors ...string) Option {
	return func(o *options) {
		for _, m := range mirrors {
			o.registryMap[dockerHub] = append(o.registryMap[dockerHub], o.takeCredentials(m))
		}
	}
}

// WithRegistryMap adds replacements for registries (--registry-map): pulls
// from a key registry are tried on its replacements in order, then on the
// registry itself unless WithSkipDefaultRegistryFallback is set.
func WithRegistryMap(m map[string][]string) Option {
	return func(o *options) {
		for from, to := range m {
			key := normalizeHost(from)
			for _, r := range to {
				o.registryMap[key] = append(o.registryMap[key], o.takeCredentials(r))
			}
		}
	}
}

// WithSkipDefaultRegistryFallback makes a pull fail when none of the mirrors
// or mapped registries has the image, instead of falling back to the original
// registry (--skip-default-registry-fallback). It has no effect on registries
// without mirrors.
func WithSkipDefaultRegistryFallback(on bool) Option {
	return func(o *options) { o.skipFallback = on }
}

// WithRegistryCertificate trusts the PEM CA bundle at caPath, in addition to
// the system roots, for one registry (--registry-certificate host=path).
func WithRegistryCertificate(registry, caPath string) Option {
	return func(o *options) {
		key := normalizeHost(registry)
		o.caCerts[key] = append(o.caCerts[key], caPath)
	}
}

// WithClientCertificate presents a client certificate to one registry for
// mutual TLS (--registry-client-cert host=cert,key).
func WithClientCertificate(registry, certPath, keyPath string) Option {
	return func(o *options) {
		o.clientCerts[normalizeHost(registry)] = clientCert{certPath: certPath, keyPath: keyPath}
	}
}

// WithIgnoreImmutableTagErrors makes Push succeed for a destination whose
// registry refuses to overwrite an immutable tag
// (--push-ignore-immutable-tag-errors).
func WithIgnoreImmutableTagErrors(on bool) Option {
	return func(o *options) { o.ignoreImmutable = on }
}

// WithTagsReplaced makes Push upload the image by digest and then PUT its manifest under each
// tag without first asking the registry what the tag points at: a tag whose current manifest
// the registry cannot even read (a damaged layer cache entry) is replaced instead of failing
// the push. The layer cache writes its entries this way; destinations are pushed as Kaniko does
// (a tag already pointing at the image is left alone, which immutable tags need).
func WithTagsReplaced() Option { return func(o *options) { o.replaceTags = true } }
