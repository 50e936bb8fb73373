package dockerfile

import (
	"sort"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// Scope is what a stage's instructions see while it runs: the image config
// Env (base image Env plus ENV instructions) and the ARGs the stage declared.
// ENV shadows ARG, as in Docker. A Scope belongs to one stage; Clone it to
// branch.
type Scope struct {
	env     []string // KEY=VALUE, image config order
	meta    *Vars
	build   BuildArgs
	argKeys []string          // declared args with a value, declaration order
	args    map[string]string // their values
}

// NewScope starts a stage's scope from its base image's config Env, the meta
// vars (read when a stage redeclares a global ARG) and the build args.
func NewScope(baseEnv []string, meta *Vars, args BuildArgs) *Scope {
	return &Scope{
		env:   append([]string(nil), baseEnv...),
		meta:  meta,
		build: args,
		args:  map[string]string{},
	}
}

// Declare handles one ARG key[=default]. Its value is the build arg if given,
// else the default, else the global ARG's value when one exists. Pass the
// pairs of an ArgCommand returned by Dockerfile.Expand, whose defaults are
// already expanded. An ARG with no value anywhere stays unset (a previously
// declared value is kept, as in BuildKit).
func (s *Scope) Declare(arg instructions.KeyValuePairOptional) {
	if v, ok := s.build.Value(arg.Key); ok {
		s.setArg(arg.Key, v)
		return
	}
	if arg.Value != nil {
		s.setArg(arg.Key, *arg.Value)
		return
	}
	if v, ok := s.meta.Get(arg.Key); ok {
		s.setArg(arg.Key, v)
	}
}

func (s *Scope) setArg(key, value string) {
	if _, ok := s.args[key]; !ok {
		s.argKeys = append(s.argKeys, key)
	}
	s.args[key] = value
}

// SetEnv handles ENV key=value: an existing entry is replaced in place, a new
// one appended.
func (s *Scope) SetEnv(key, value string) {
	entry := key + "=" + value
	for i, e := range s.env {
		if envKey(e) == key {
			s.env[i] = entry
			return
		}
	}
	s.env = append(s.env, entry)
}

// envKey returns the name part of a KEY=VALUE entry.
func envKey(e string) string {
	k, _, _ := strings.Cut(e, "=")
	return k
}

// Env returns the image config Env (KEY=VALUE, in order).
func (s *Scope) Env() []string {
	return append([]string(nil), s.env...)
}

// RunEnv is the environment of a RUN: Env, then the declared args not
// shadowed by Env, then predefined proxy args given as build args and neither
// declared nor in Env.
func (s *Scope) RunEnv() []string {
	out := s.Env()
	inEnv := map[string]bool{}
	for _, e := range s.env {
		inEnv[envKey(e)] = true
	}
	for _, k := range s.argKeys {
		if !inEnv[k] {
			out = append(out, k+"="+s.args[k])
		}
	}
	for _, k := range proxyArgs {
		if _, declared := s.args[k]; declared || inEnv[k] {
			continue
		}
		if v, ok := s.build.Value(k); ok {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// Args returns the declared args with their values (undeclared proxy args
// excluded), for cache keys and history.
func (s *Scope) Args() map[string]string {
	m := make(map[string]string, len(s.args))
	for k, v := range s.args {
		m[k] = v
	}
	return m
}

// ArgPairs returns the declared args as KEY=VALUE in declaration order, the
// value being the one a RUN sees (Env wins). It is what Docker records in a
// RUN's history as "|N KEY=VALUE ...".
func (s *Scope) ArgPairs() []string {
	out := make([]string, 0, len(s.argKeys))
	for _, k := range s.argKeys {
		v, _ := s.Lookup(k)
		out = append(out, k+"="+v)
	}
	return out
}

// Lookup returns the value expansion sees for name: Env first, then declared args.
func (s *Scope) Lookup(name string) (string, bool) {
	for i := len(s.env) - 1; i >= 0; i-- {
		if k, v, _ := strings.Cut(s.env[i], "="); k == name {
			return v, true
		}
	}
	v, ok := s.args[name]
	return v, ok
}

// Get implements the shell lexer's environment interface (same as Lookup).
func (s *Scope) Get(name string) (string, bool) { return s.Lookup(name) }

// Keys lists every name Lookup resolves, sorted.
func (s *Scope) Keys() []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range s.env {
		if k := envKey(e); !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	for _, k := range s.argKeys {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Clone returns an independent copy of s (meta and build args are shared, as
// nothing changes them).
func (s *Scope) Clone() *Scope {
	c := &Scope{
		env:     append([]string(nil), s.env...),
		meta:    s.meta,
		build:   s.build,
		argKeys: append([]string(nil), s.argKeys...),
		args:    make(map[string]string, len(s.args)),
	}
	for k, v := range s.args {
		c.args[k] = v
	}
	return c
}

// InheritArgs declares in s, in their order, the args parent declared: parent is the scope a
// stage ended with, and s starts a stage built FROM it. They are visible without an ARG of
// their own, and a bare `ARG NAME` keeps the inherited value, as in Kaniko and BuildKit.
func (s *Scope) InheritArgs(parent *Scope) {
	for _, k := range parent.argKeys {
		s.setArg(k, parent.args[k])
	}
}

// Declared reports whether the stage declared name with ARG and it has a value.
func (s *Scope) Declared(name string) bool {
	_, ok := s.args[name]
	return ok
}
