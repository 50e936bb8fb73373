package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Push writes img to every destination (tags; ":latest" is implied, a digest
// is an error) and returns the manifest digest. All destinations are parsed
// before anything is uploaded, so one bad destination pushes nothing.
//
// Blobs are uploaded once per repository, blobs the registry already has are
// skipped, and layers pulled from the same registry are mounted rather than
// uploaded. Destinations in different repositories are pushed concurrently.
func Push(ctx context.Context, img v1.Image, destinations []string, opts ...Option) (v1.Hash, error) {
	o := makeOptions(opts)
	prog := newProgressMux(o.progress)
	digest, err := o.push(ctx, img, destinations, prog)
	if err := prog.finish(err); err != nil {
		return v1.Hash{}, err
	}
	return digest, nil
}

func (o *options) push(ctx context.Context, img v1.Image, destinations []string, prog *progressMux) (v1.Hash, error) {
	if len(destinations) == 0 {
		return v1.Hash{}, errors.New("push: no destination given")
	}
	groups, err := o.groupByRepository(destinations)
	if err != nil {
		return v1.Hash{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("push: computing image digest: %w", err)
	}

	ts := newTransports(o)
	pushers := map[string]*remote.Pusher{} // by registry, so TLS settings stay per registry
	for _, g := range groups {
		reg := g.repo.RegistryStr()
		if pushers[reg] != nil {
			continue
		}
		rt, err := ts.For(reg)
		if err != nil {
			return v1.Hash{}, &Error{Op: "push", Ref: g.dests[0].raw, Err: err}
		}
		ropts := o.remoteOptions(ctx, rt)
		if ch := prog.source(); ch != nil {
			ropts = append(ropts, remote.WithProgress(ch))
		}
		p, err := remote.NewPusher(ropts...)
		if err != nil {
			return v1.Hash{}, &Error{Op: "push", Ref: g.dests[0].raw, Err: err}
		}
		pushers[reg] = p
	}

	// Every repository is pushed even when another fails; errors are
	// reported in the order of the destinations.
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = o.pushRepository(ctx, pushers[g.repo.RegistryStr()], img, g)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return v1.Hash{}, err
	}
	return digest, nil
}

// destination is one parsed push target and the string the user gave.
type destination struct {
	raw string
	tag name.Tag
}

// repoGroup is the destinations sharing one repository, in the user's order.
type repoGroup struct {
	repo  name.Repository
	dests []destination
}

// groupByRepository parses every destination, failing on the first bad one,
// and groups them by repository in first-seen order.
func (o *options) groupByRepository(destinations []string) ([]*repoGroup, error) {
	var groups []*repoGroup
	index := map[string]*repoGroup{}
	for _, d := range destinations {
		tag, err := o.parseDestination(d)
		if err != nil {
			return nil, err
		}
		key := tag.Context().Name()
		g := index[key]
		if g == nil {
			g = &repoGroup{repo: tag.Context()}
			index[key] = g
			groups = append(groups, g)
		}
		g.dests = append(g.dests, destination{raw: d, tag: tag})
	}
	return groups, nil
}

// pushRepository uploads the blobs and first tag, then the remaining tags,
// which the pusher reduces to manifest PUTs since it deduplicates by digest.
func (o *options) pushRepository(ctx context.Context, p *remote.Pusher, img v1.Image, g *repoGroup) error {
	write := func(tag name.Tag) error { return p.Push(ctx, tag, img) }
	if o.replaceTags {
		digest, err := img.Digest()
		if err != nil {
			return &Error{Op: "push", Ref: g.dests[0].raw, Err: err}
		}
		if err := p.Push(ctx, g.repo.Digest(digest.String()), img); err != nil {
			return &Error{Op: "push", Ref: g.dests[0].raw, Err: err}
		}
		write = func(tag name.Tag) error { return p.Put(ctx, tag, img) }
	}
	var errs []error
	for _, d := range g.dests {
		err := write(d.tag)
		if err != nil && o.ignoreImmutable && isImmutableTagError(err) {
			err = nil
		}
		if err != nil {
			errs = append(errs, &Error{Op: "push", Ref: d.raw, Err: err})
			if ctx.Err() != nil {
				break
			}
		}
	}
	return errors.Join(errs...)
}
