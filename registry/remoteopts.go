package registry

import (
	"context"
	"net/http"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// remoteOptions translates o into go-containerregistry options for one call
// over rt (the registry's base transport).
func (o *options) remoteOptions(ctx context.Context, rt http.RoundTripper) []remote.Option {
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(rt),
		remote.WithAuthFromKeychain(o.authKeychain()),
		remote.WithPlatform(o.platform),
		remote.WithJobs(o.jobs),
		remote.WithRetryBackoff(o.backoff()),
		remote.WithRetryPredicate(retryable),
		remote.WithRetryStatusCodes(retryStatusCodes()...),
	}
	if o.userAgent != "" {
		opts = append(opts, remote.WithUserAgent(o.userAgent))
	}
	return opts
}
