package spec

import (
	"maps"
	"slices"
)

// eachString calls visit with every string value of p and its key path, in file order (map
// values by key). emptyOK tells values that may be "" (optional keys, where "" means the
// default; map values; exec arguments) from those that may not. visit may change the string.
func (p *Pipeline) eachString(visit func(path string, s *string, emptyOK bool)) {
	visit("name", &p.Name, false)
	visit("namespace", &p.Namespace, true)
	if s := p.Source; s != nil {
		visit("source.git", &s.Git, false)
		visit("source.ref", &s.Ref, true)
	}
	visit("executorImage", &p.ExecutorImage, true)
	visit("registrySecret", &p.RegistrySecret, true)
	if b := p.Build; b != nil {
		visit("build.image", &b.Image, false)
		if b.Command.Exec == nil {
			visit("build.command", &b.Command.Shell, false)
		}
		eachItem("build.command", b.Command.Exec, true, visit)
		visit("build.workdir", &b.Workdir, true)
		visit("build.output", &b.Output, true)
		eachValue("build.env", b.Env, visit)
	}
	if i := p.Image; i != nil {
		p.eachImageString(i, visit)
	}
	if d := p.Deploy; d != nil {
		eachItem("deploy.manifests", d.Manifests, false, visit)
		eachValue("deploy.replacements", d.Replacements, visit)
	}
}

func (p *Pipeline) eachImageString(i *Image, visit func(string, *string, bool)) {
	visit("image.dockerfile", &i.Dockerfile, true)
	visit("image.context", &i.Context, true)
	for n := range i.Destinations {
		visit(p.destinationPath(n), &i.Destinations[n], false)
	}
	visit("image.cacheRepo", &i.CacheRepo, true)
	visit("image.target", &i.Target, true)
	eachValue("image.buildArgs", i.BuildArgs, visit)
	eachItem("image.flags", i.Flags, true, visit) // one that expands to nothing is dropped
}

func eachItem(path string, items []string, emptyOK bool, visit func(string, *string, bool)) {
	for n := range items {
		visit(index(path, n), &items[n], emptyOK)
	}
}

// eachValue visits the values of m; it writes one back only if visit changed it, so that
// read-only visits are safe on a shared Pipeline.
func eachValue(path string, m map[string]string, visit func(string, *string, bool)) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		visit(join(path, k), &v, true)
		if v != m[k] {
			m[k] = v
		}
	}
}

// clone is a deep copy of p.
func (p *Pipeline) clone() *Pipeline {
	q := *p
	q.Lines = maps.Clone(p.Lines)
	if p.Source != nil {
		s := *p.Source
		q.Source = &s
	}
	if p.Build != nil {
		b := *p.Build
		b.Command.Exec = slices.Clone(b.Command.Exec)
		b.Env = maps.Clone(b.Env)
		q.Build = &b
	}
	if p.Image != nil {
		i := *p.Image
		i.Destinations = slices.Clone(i.Destinations)
		i.BuildArgs = maps.Clone(i.BuildArgs)
		i.Flags = slices.Clone(i.Flags)
		q.Image = &i
	}
	if p.Deploy != nil {
		d := *p.Deploy
		d.Manifests = slices.Clone(d.Manifests)
		d.Replacements = maps.Clone(d.Replacements)
		if d.Wait != nil {
			w := *d.Wait
			d.Wait = &w
		}
		q.Deploy = &d
	}
	return &q
}
