package registry

import (
	"context"
	"errors"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"
)

// CheckPushAccess verifies that every destination can be pushed to before
// any work is done, by starting (and cancelling) a blob upload in each
// repository as Kaniko does. Each failure names the registry, the repository
// and the reason: unauthorized, denied, not found, TLS or connection refused.
// All failing repositories are reported, not only the first.
func CheckPushAccess(ctx context.Context, destinations []string, opts ...Option) error {
	o := makeOptions(opts)
	groups, err := o.groupByRepository(destinations)
	if err != nil {
		return err
	}
	ts := newTransports(o)
	errs := make([]error, len(groups)) // in the order of the destinations
	var eg errgroup.Group
	eg.SetLimit(o.jobs)
	for i, g := range groups {
		eg.Go(func() error {
			errs[i] = o.checkRepository(ctx, ts, g)
			return nil
		})
	}
	_ = eg.Wait()
	return errors.Join(errs...)
}

func (o *options) checkRepository(ctx context.Context, ts *transports, g *repoGroup) error {
	d := g.dests[0]
	fail := func(err error) error {
		return &Error{Op: "check push access", Ref: d.raw, Err: annotate(err, "registry %s, repository %s: %s",
			g.repo.RegistryStr(), g.repo.RepositoryStr(), reason(err))}
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	rt, err := ts.For(g.repo.RegistryStr())
	if err != nil {
		return fail(err)
	}
	// CheckPushPermission takes no context; the retries bound its duration.
	if err := remote.CheckPushPermission(d.tag, o.authKeychain(), o.withRetries(rt)); err != nil {
		return fail(err)
	}
	return nil
}
