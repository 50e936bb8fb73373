package builder

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/buildcontext"
	"github.com/kilnbuild/kiln/cache"
	"github.com/kilnbuild/kiln/dockerfile"
)

// Named contexts, as BuildKit's --build-context NAME=VALUE. VALUE is one of
//
//	dir:///path (or a plain path)   a directory; its .dockerignore applies
//	docker-image://REF              an image from a registry (docker-image://scratch: empty)
//	oci-layout:///path[@DIGEST|:TAG] an image in an OCI layout (the only one when neither is given)
//	https://host/repo.git#ref, git@host:repo.git, git://...  a Git checkout
//	https://host/ctx.tar.gz         an archive, unpacked
//
// A name stands where BuildKit lets it stand: `FROM NAME` (a directory or checkout becomes a
// base of its files, as `FROM scratch` + `COPY . /` would give), `COPY --from=NAME` and
// `RUN --mount=...,from=NAME`. A stage named NAME is replaced by the context: its
// instructions do not run, and FROM NAME, --from=NAME and --target=NAME get the context.
// Otherwise a stage of that name is used before a context, and a context before an image.
// Names are compared as BuildKit compares them: `alpine`, `alpine:latest` and
// `docker.io/library/alpine` are the same name. The names `scratch` and `context` are
// reserved.

// BuildContext is one named context: a name and where its files come from.
type BuildContext struct {
	Name  string
	Value string
}

// WithBuildContexts adds named contexts (the executor's --build-context).
func WithBuildContexts(c ...BuildContext) Option {
	return func(o *options) { o.buildContexts = append(o.buildContexts, c...) }
}

// ParseBuildContext parses the value of --build-context, NAME=VALUE, and checks it.
func ParseBuildContext(s string) (BuildContext, error) {
	n, v, ok := strings.Cut(s, "=")
	c := BuildContext{Name: strings.TrimSpace(n), Value: strings.TrimSpace(v)}
	if !ok || c.Name == "" || c.Value == "" {
		return BuildContext{}, fmt.Errorf("--build-context %s: want NAME=VALUE", s)
	}
	if err := c.Check(); err != nil {
		return BuildContext{}, fmt.Errorf("--build-context %s: %w", s, err)
	}
	return c, nil
}

// Check reports a reserved name or a value of no known kind.
func (c BuildContext) Check() error {
	switch contextKey(c.Name) {
	case "scratch", "context":
		return fmt.Errorf("the name %q is reserved", c.Name)
	}
	_, _, err := contextKind(c.Value)
	return err
}

// Kinds of named contexts.
const (
	kindDir   = "dir"
	kindImage = "docker-image"
	kindOCI   = "oci-layout"
	kindGit   = "git"
	kindTar   = "tar"
)

// contextKind says what a --build-context value names, and the rest of it.
func contextKind(v string) (kind, rest string, err error) {
	if _, ok, err := buildcontext.ParseGitRef(v); ok || err != nil {
		return kindGit, v, err
	}
	scheme, rest, found := strings.Cut(v, "://")
	if !found {
		return kindDir, v, nil
	}
	switch scheme {
	case "dir":
		return kindDir, rest, nil
	case "docker-image":
		if rest == "" {
			return "", "", errors.New("docker-image:// names no image")
		}
		return kindImage, rest, nil
	case "oci-layout":
		return kindOCI, rest, nil
	case "http", "https":
		return kindTar, v, nil
	}
	return "", "", fmt.Errorf("unknown kind %s://: want dir://, docker-image://, oci-layout://, a Git URL or an https:// archive", scheme)
}

// contextKey normalises a name as BuildKit does: the familiar form of an image reference,
// without ":latest"; a name that is no reference is only lower-cased.
func contextKey(s string) string {
	r, err := name.ParseReference(s)
	if err != nil {
		return strings.ToLower(s)
	}
	repo := r.Context().RepositoryStr()
	if reg := r.Context().RegistryStr(); reg != name.DefaultRegistry {
		repo = reg + "/" + repo
	} else {
		repo = strings.TrimPrefix(repo, "library/")
	}
	switch v := r.(type) {
	case name.Tag:
		if v.TagStr() != "latest" {
			repo += ":" + v.TagStr()
		}
	case name.Digest:
		repo += "@" + v.DigestStr()
	}
	return repo
}

// namedContext is one --build-context of this build, resolved on first use.
type namedContext struct {
	BuildContext
	kind, rest string

	once    sync.Once
	err     error
	dir     string                // dir, git, tar: the files
	exclude func(rel string) bool // dir: its .dockerignore
	image   v1.Image              // the image (for FROM; made from the files for dir, git, tar)
}

// initContexts checks the named contexts and indexes them by name.
func (b *build) initContexts() error {
	b.contexts = map[string]*namedContext{}
	for _, c := range b.o.buildContexts {
		if err := c.Check(); err != nil {
			return fmt.Errorf("build context %s: %w", c.Name, err)
		}
		kind, rest, _ := contextKind(c.Value)
		b.contexts[contextKey(c.Name)] = &namedContext{BuildContext: c, kind: kind, rest: rest}
	}
	return nil
}

// namedContext finds the named context a FROM or --from value names.
func (b *build) namedContext(ref string) (*namedContext, bool) {
	if len(b.contexts) == 0 || ref == "" || strings.EqualFold(ref, "scratch") {
		return nil, false
	}
	nc, ok := b.contexts[contextKey(ref)]
	return nc, ok
}

// replacesStage reports whether a stage's name is a named context (the stage is replaced).
func (b *build) replacesStage(stageName string) bool {
	if stageName == "" {
		return false
	}
	_, ok := b.namedContext(stageName)
	return ok
}

// namedSource is a named context as COPY --from reads it.
func (b *build) namedSource(ctx context.Context, nc *namedContext) (fromSource, error) {
	if err := b.resolveContext(ctx, nc); err != nil {
		return fromSource{}, err
	}
	if nc.dir != "" {
		return fromSource{dir: nc.dir, exclude: nc.exclude, context: true}, nil
	}
	dir, err := b.imageDir(ctx, "context:"+nc.Name, nc.image)
	return fromSource{dir: dir}, err
}

// namedImage is a named context as FROM uses it; the image of a directory's files is made on
// first use.
func (b *build) namedImage(ctx context.Context, nc *namedContext) (v1.Image, error) {
	if err := b.resolveContext(ctx, nc); err != nil {
		return nil, err
	}
	if nc.image == nil {
		img, err := b.filesImage(ctx, nc)
		if err != nil {
			return nil, fmt.Errorf("build context %s: %w", nc.Name, err)
		}
		nc.image = img
	}
	return nc.image, nil
}

// resolveContext fetches or opens a named context once.
func (b *build) resolveContext(ctx context.Context, nc *namedContext) error {
	nc.once.Do(func() { nc.err = b.loadContext(ctx, nc) })
	if nc.err != nil {
		return fmt.Errorf("build context %s=%s: %w", nc.Name, buildcontext.Redact(nc.Value), nc.err)
	}
	return nil
}

func (b *build) loadContext(ctx context.Context, nc *namedContext) error {
	var err error
	switch nc.kind {
	case kindImage:
		nc.image, err = b.contextImage(ctx, nc.rest)
		return err
	case kindOCI:
		nc.image, err = layoutImage(nc.rest, b.platform)
		if err == nil {
			err = b.outsideRoot(layoutPath(nc.rest), "oci-layout")
		}
		return err
	case kindDir:
		return b.loadDirContext(nc)
	case kindGit:
		nc.dir, err = b.gitContext(ctx, nc)
		return err
	case kindTar:
		nc.dir, err = b.tarContext(ctx, nc)
		return err
	}
	return fmt.Errorf("unknown kind %s", nc.kind)
}

// loadDirContext checks a directory context and reads its .dockerignore.
func (b *build) loadDirContext(nc *namedContext) error {
	dir, err := filepath.Abs(nc.rest)
	if err != nil {
		return err
	}
	if err := b.outsideRoot(dir, "directory"); err != nil {
		return err
	}
	if !isDir(dir) {
		return fmt.Errorf("%s is not a directory", dir)
	}
	ign, err := dockerfile.LoadIgnore(dir, "")
	if err != nil {
		return err
	}
	nc.dir, nc.exclude = dir, ign.Excluded
	return nil
}

// contextDigest is what a named context holds, for a cache key: the image's digest, or the
// digest of every file of a directory (after its .dockerignore).
func (b *build) contextDigest(ctx context.Context, nc *namedContext) (string, error) {
	if err := b.resolveContext(ctx, nc); err != nil {
		return "", err
	}
	if nc.dir == "" {
		d, err := nc.image.Digest()
		return "image:" + d.String(), err
	}
	files, err := cache.FileInputs(cache.Sources{Root: nc.dir, Paths: []string{"."}, Exclude: nc.exclude})
	if err != nil {
		return "", err
	}
	return "context:" + string(cache.NewKey("", files...)), nil
}
