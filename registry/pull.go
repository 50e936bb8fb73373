package registry

import (
	"context"
	"errors"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Pull resolves ref (a tag or digest; Docker Hub is the default registry, as
// in name.ParseReference) and returns the image. An index is resolved to the
// platform of WithPlatform. The manifest and config are fetched now; layers
// are fetched when read, so ctx must stay live while the image is used.
//
// Mirrors and registry maps are tried first, in order; the original registry
// is tried last unless WithSkipDefaultRegistryFallback is set.
func Pull(ctx context.Context, ref string, opts ...Option) (v1.Image, error) {
	o := makeOptions(opts)
	parsed, err := o.parseReference(ref)
	if err != nil {
		return nil, &Error{Op: "pull", Ref: ref, Err: err}
	}
	ts := newTransports(o)

	var mirrorErrs []error
	for _, mapping := range o.registryMap[parsed.Context().RegistryStr()] {
		img, err := o.pullFrom(ctx, ts, parsed, mapping)
		if err == nil {
			return img, nil
		}
		if ctx.Err() != nil { // cancelled: do not try the rest
			return nil, &Error{Op: "pull", Ref: ref, Err: ctx.Err()}
		}
		mirrorErrs = append(mirrorErrs, annotate(err, "mirror %s", mapping))
	}
	if len(mirrorErrs) > 0 && o.skipFallback {
		return nil, &Error{Op: "pull", Ref: ref, Err: annotate(errors.Join(mirrorErrs...),
			"not found on any mirror (fallback to %s disabled)", parsed.Context().RegistryStr())}
	}

	img, err := o.pullRef(ctx, ts, parsed)
	if err != nil {
		if len(mirrorErrs) > 0 {
			err = &annotated{msg: describe(err) + " (mirrors failed too: " + describe(errors.Join(mirrorErrs...)) + ")",
				err: errors.Join(append([]error{err}, mirrorErrs...)...)}
		}
		return nil, &Error{Op: "pull", Ref: ref, Err: err}
	}
	return img, nil
}

// pullFrom pulls ref from a mirror given as host[:port][/path-prefix]; the
// prefix goes in front of the repository ("library/alpine" on Docker Hub).
func (o *options) pullFrom(ctx context.Context, ts *transports, ref name.Reference, mapping string) (v1.Image, error) {
	host, prefix, _ := strings.Cut(strings.TrimSuffix(normalizeMirror(mapping), "/"), "/")
	if prefix != "" {
		prefix += "/"
	}
	repo, err := name.NewRepository(host+"/"+prefix+ref.Context().RepositoryStr(), o.nameOptions(host)...)
	if err != nil {
		return nil, err
	}
	return o.pullRef(ctx, ts, withRepository(ref, repo))
}

// normalizeMirror drops a scheme from a mirror spec ("https://mirror.gcr.io").
func normalizeMirror(m string) string {
	return strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(m), "https://"), "http://")
}

// pullRef fetches the manifest of ref from its own registry.
func (o *options) pullRef(ctx context.Context, ts *transports, ref name.Reference) (v1.Image, error) {
	rt, err := ts.For(ref.Context().RegistryStr())
	if err != nil {
		return nil, err
	}
	return remote.Image(ref, o.remoteOptions(ctx, rt)...)
}
