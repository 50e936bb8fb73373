package spec

import (
	"errors"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// checker finds bad values. Before Expand a value holding a ${VAR} is checked only where the
// variable cannot make it right (a path that climbs out with ..); after Expand all values are.
type checker struct {
	p        *Pipeline
	expanded bool
	errs     []*Error
}

func (c *checker) errorf(path, format string, args ...any) {
	c.errs = append(c.errs, c.p.errorAt(path, oneLine(format, args...)))
}

// final reports whether s is checked as it is now.
func (c *checker) final(s string) bool { return c.expanded || !strings.Contains(s, "$") }

// check returns the bad values of p: names, image references, paths, flags and, before
// Expand, malformed ${VAR} references.
func (p *Pipeline) check(expanded bool) []*Error {
	c := &checker{p: p, expanded: expanded}
	c.name("name", p.Name, false)
	c.name("namespace", p.Namespace, false)
	c.name("registrySecret", p.RegistrySecret, true)
	c.ref("executorImage", p.ExecutorImage)
	if b := p.Build; b != nil {
		c.ref("build.image", b.Image)
		if b.Workdir != "" && c.final(b.Workdir) && !path.IsAbs(b.Workdir) {
			c.errorf("build.workdir", "%q is relative: give an absolute path in the stage image", b.Workdir)
		}
		c.local("build.output", b.Output, "the workspace")
	}
	if i := p.Image; i != nil {
		c.image(i)
	}
	if d := p.Deploy; d != nil {
		for n, m := range d.Manifests {
			c.local(index("deploy.manifests", n), m, "the pipeline file's directory")
		}
	}
	if !expanded {
		c.references()
	}
	return c.errs
}

func (c *checker) image(i *Image) {
	c.local("image.context", i.Context, "the pipeline file's directory")
	// The Dockerfile may be outside the context, as with Kaniko, but not outside the workspace.
	if f := i.Dockerfile; f != "" && (filepath.IsAbs(f) || (c.final(i.Context+f) && !filepath.IsLocal(filepath.Join(i.Context, f)))) {
		c.errorf("image.dockerfile", "%q is outside the pipeline file's directory: give a path "+
			"relative to image.context (%q) that stays inside it", f, i.ContextOrDefault())
	}
	for n, d := range i.Destinations {
		c.ref(c.p.destinationPath(n), d)
	}
	if r := i.CacheRepo; r != "" && c.final(r) && !strings.HasPrefix(r, "oci:") {
		if _, err := name.NewRepository(r); err != nil {
			c.errorf("image.cacheRepo", "%q is not a valid repository: %v", r, err)
		}
	}
	for n, f := range i.Flags {
		c.flag(index("image.flags", n), f)
	}
}

// destinationPath is "image.destination" when the file gives one string, else indexed.
func (p *Pipeline) destinationPath(i int) string {
	if _, list := p.Lines["image.destination[0]"]; list || len(p.Image.Destinations) > 1 {
		return index("image.destination", i)
	}
	return "image.destination"
}

func (c *checker) ref(path, s string) {
	if s == "" || !c.final(s) {
		return
	}
	if _, err := name.ParseReference(s); err != nil {
		c.errorf(path, "%q is not a valid image reference: %v", s, refError(s))
	}
}

// refError says why s is not a reference, as the tag or digest parser tells it (ParseReference
// only says "could not parse").
func refError(s string) error {
	var err error
	if strings.Contains(s, "@") {
		_, err = name.NewDigest(s)
	} else {
		_, err = name.NewTag(s)
	}
	if err == nil {
		return errors.New("could not parse it")
	}
	return err
}

// local checks a path that must stay inside base, the directory it is relative to.
func (c *checker) local(path, s, base string) {
	switch {
	case filepath.IsAbs(s):
		c.errorf(path, "%q is absolute: give a path relative to %s", s, base)
	case climbs(s):
		c.errorf(path, "%q climbs out with ..: give a path inside %s", s, base)
	}
}

// climbs reports whether s has a ".." element (the schema's rule, simpler than "ends outside").
func climbs(s string) bool {
	for _, e := range strings.Split(filepath.ToSlash(s), "/") {
		if e == ".." {
			return true
		}
	}
	return false
}

// flag checks an executor flag: the executor's flag set itself is imagestage's to check.
func (c *checker) flag(path, f string) {
	if !c.final(f) {
		return
	}
	flag, _, _ := strings.Cut(strings.TrimLeft(f, "-"), "=")
	switch {
	case !strings.HasPrefix(f, "-") || strings.TrimSpace(flag) == "":
		c.errorf(path, "%q is not a flag: executor flags start with -- (e.g. --insecure, --compression=zstd)", f)
	case strings.ContainsAny(flag, " \t"):
		c.errorf(path, "%q: give the value after = (%s=...), one flag per item", f, strings.Fields(f)[0])
	case ownKey(flag) != "":
		c.errorf(path, "%q has a key of its own: use image.%s", f, ownKey(flag))
	}
}

// ownKey is the image key that stands for an executor flag, if there is one.
func ownKey(flag string) string {
	switch flag {
	case "destination", "d":
		return "destination"
	case "dockerfile", "f":
		return "dockerfile"
	case "context", "c":
		return "context"
	case "cache", "target":
		return flag
	case "cache-repo":
		return "cacheRepo"
	case "cache-copy-layers":
		return "cacheCopyLayers"
	case "build-arg":
		return "buildArgs"
	}
	return ""
}

// name checks a Kubernetes object name: a DNS label (the app, its namespace) or, with dots,
// a DNS subdomain (a Secret).
func (c *checker) name(path, s string, dots bool) {
	if s == "" || !c.final(s) {
		return
	}
	label := `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
	pattern, max, chars := `^`+label+`$`, 63, "lower case letters, digits and -"
	if dots {
		pattern, max, chars = `^`+label+`(\.`+label+`)*$`, 253, "lower case letters, digits, - and ."
	}
	if len(s) > max || !regexp.MustCompile(pattern).MatchString(s) {
		c.errorf(path, "%q is not a valid Kubernetes name: %s, starting and ending with a letter "+
			"or digit, at most %d characters", s, chars, max)
	}
}

// references reports malformed ${VAR} references in every string.
func (c *checker) references() {
	c.p.eachString(func(path string, s *string, _ bool) {
		if _, err := ParseWord(*s); err != nil {
			c.errorf(path, "%v", err)
		}
	})
}
