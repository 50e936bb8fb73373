package registry

import (
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// dockerHub is the registry host go-containerregistry uses for Docker Hub.
const dockerHub = name.DefaultRegistry

// hostSet is a set of registry hosts, stored normalized.
type hostSet map[string]bool

func (s hostSet) add(hosts ...string) {
	for _, h := range hosts {
		if h = strings.TrimSpace(h); h != "" {
			s[normalizeHost(h)] = true
		}
	}
}

// normalizeHost maps the spellings of one registry onto one key: a scheme or
// trailing slash is dropped and "docker.io" becomes "index.docker.io".
func normalizeHost(h string) string {
	h = strings.TrimSpace(h)
	h = strings.TrimPrefix(strings.TrimPrefix(h, "https://"), "http://")
	h = strings.TrimSuffix(h, "/")
	if reg, err := name.NewRegistry(h, name.WeakValidation); err == nil {
		return reg.RegistryStr()
	}
	return h
}

// allowsHTTP reports whether plain HTTP may be used with registry.
func (o *options) allowsHTTP(registry string) bool {
	return o.insecureAll || o.insecure[normalizeHost(registry)]
}

// skipsVerify reports whether TLS verification is off for registry.
func (o *options) skipsVerify(registry string) bool {
	return o.skipVerifyAll || o.skipVerify[normalizeHost(registry)]
}

// nameOptions returns the name options for references on registry.
func (o *options) nameOptions(registry string) []name.Option {
	opts := []name.Option{name.WeakValidation}
	if o.allowsHTTP(registry) {
		opts = append(opts, name.Insecure)
	}
	return opts
}

// withRepository returns ref moved to repo (same tag or digest).
func withRepository(ref name.Reference, repo name.Repository) name.Reference {
	switch r := ref.(type) {
	case name.Tag:
		return repo.Tag(r.TagStr())
	case name.Digest:
		return repo.Digest(r.DigestStr())
	}
	return ref
}

// parseReference parses s, marking its registry insecure when allowed.
func (o *options) parseReference(s string) (name.Reference, error) {
	ref, err := name.ParseReference(s, name.WeakValidation)
	if err != nil {
		return nil, err
	}
	if !o.allowsHTTP(ref.Context().RegistryStr()) {
		return ref, nil
	}
	return name.ParseReference(s, o.nameOptions(ref.Context().RegistryStr())...)
}

// parseDestination parses a push destination: it must be a tag (":latest" is
// implied), never a digest.
func (o *options) parseDestination(s string) (name.Tag, error) {
	if strings.Contains(s, "@") {
		return name.Tag{}, &Error{Op: "push", Ref: s, Err: errDigestDestination}
	}
	ref, err := name.NewTag(s, name.WeakValidation)
	if err != nil {
		return name.Tag{}, &Error{Op: "push", Ref: s, Err: err}
	}
	if o.allowsHTTP(ref.RegistryStr()) {
		ref, err = name.NewTag(s, o.nameOptions(ref.RegistryStr())...)
		if err != nil {
			return name.Tag{}, &Error{Op: "push", Ref: s, Err: err}
		}
	}
	return ref, nil
}
