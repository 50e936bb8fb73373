package registry

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// retryStatusCodes are the answers worth retrying: timeouts, rate limits and
// server errors.
func retryStatusCodes() []int {
	return []int{
		http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout,
	}
}

// backoff returns the retry schedule: retries+1 attempts, the delay tripling.
func (o *options) backoff() remote.Backoff {
	return remote.Backoff{Duration: o.retryDelay, Factor: 3, Jitter: 0.1, Steps: o.retries + 1}
}

// transports builds, once per registry within one call, the base transport
// carrying that registry's TLS settings. Per-call, so nothing is shared
// between builds except the default transport's connection pool.
type transports struct {
	o    *options
	mu   sync.Mutex
	byRg map[string]http.RoundTripper
}

func newTransports(o *options) *transports {
	return &transports{o: o, byRg: map[string]http.RoundTripper{}}
}

// For returns the base transport for registry (host[:port]).
func (t *transports) For(registry string) (http.RoundTripper, error) {
	key := normalizeHost(registry)
	t.mu.Lock()
	defer t.mu.Unlock()
	if rt, ok := t.byRg[key]; ok {
		return rt, nil
	}
	rt, err := t.o.buildTransport(key)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", registry, err)
	}
	t.byRg[key] = rt
	return rt, nil
}

// cloneIdleTimeout is how long a per-call transport keeps an idle connection.
const cloneIdleTimeout = 3 * time.Second

// buildTransport applies skip-verify, extra CAs and a client certificate for
// registry to a clone of the base transport. Without TLS settings the base is
// used as is, so its connections are reused.
func (o *options) buildTransport(registry string) (http.RoundTripper, error) {
	base := o.transport
	if base == nil {
		base = remote.DefaultTransport
	}
	skip := o.skipsVerify(registry)
	cas := o.caCerts[registry]
	cc, hasCC := o.clientCerts[registry]
	if !skip && len(cas) == 0 && !hasCC {
		return base, nil
	}
	ht, ok := base.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("TLS settings need an *http.Transport base transport, got %T", base)
	}
	ht = ht.Clone()
	// The clone serves one call and no later call reuses its pool: idle connections are closed
	// soon instead of after the shared pool's 90 s, so a long-lived process using the library
	// does not keep a pool of connections per build.
	ht.IdleConnTimeout = cloneIdleTimeout
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ht.TLSClientConfig != nil {
		cfg = ht.TLSClientConfig.Clone()
	}
	cfg.InsecureSkipVerify = skip //nolint:gosec // the user asked for it for this registry
	if len(cas) > 0 {
		pool, err := certPool(cas)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if hasCC {
		pair, err := tls.LoadX509KeyPair(cc.certPath, cc.keyPath)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s, key %s: %w", cc.certPath, cc.keyPath, err)
		}
		cfg.Certificates = append(cfg.Certificates, pair)
	}
	ht.TLSClientConfig = cfg
	return ht, nil
}

// certPool returns the system roots plus the PEM certificates in paths.
func certPool(paths []string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, p := range paths {
		pem, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("registry certificate: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("registry certificate %s: no PEM certificate found", p)
		}
	}
	return pool, nil
}

// withRetries wraps rt in go-containerregistry's retrying transport, for the
// calls (the push check) that do not get remote's own wrapping.
func (o *options) withRetries(rt http.RoundTripper) http.RoundTripper {
	rt = transport.NewRetry(rt,
		transport.WithRetryBackoff(o.backoff()),
		transport.WithRetryPredicate(retryable),
		transport.WithRetryStatusCodes(retryStatusCodes()...))
	if o.userAgent != "" {
		rt = transport.NewUserAgent(rt, o.userAgent)
	}
	return rt
}
