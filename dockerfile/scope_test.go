package dockerfile

import (
	"reflect"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// runStage applies a stage's ARG and ENV instructions to a fresh scope, the
// way the builder does, and returns the scope.
func runStage(t *testing.T, d *Dockerfile, i int, meta *Vars, args BuildArgs, baseEnv []string) *Scope {
	t.Helper()
	s := NewScope(baseEnv, meta, args)
	for _, c := range d.Stages[i].Commands {
		x, err := d.Expand(c, s)
		if err != nil {
			t.Fatalf("Expand: %v", err)
		}
		switch c := x.(type) {
		case *instructions.ArgCommand:
			for _, kv := range c.Args {
				s.Declare(kv)
			}
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				s.SetEnv(kv.Key, kv.Value)
			}
		}
	}
	return s
}

func lookup(s *Scope, name string) string {
	v, ok := s.Lookup(name)
	if !ok {
		return "<unset>"
	}
	return v
}

func TestArgScoping(t *testing.T) {
	d := mustParse(t, `ARG GLOBAL=g
ARG VERSION=1.0
ARG EMPTY=
FROM busybox AS one
ARG VERSION
ARG LOCAL=l-$VERSION
ARG BUILDX
ARG EMPTY
ENV FROMENV=$LOCAL
FROM busybox AS two
ARG NODEFAULT
ARG DEF=${NODEFAULT:-fallback} ALT=${VERSION:+set}
ARG GIVEN=default
ARG ZERO=
ENV GIVEN=env-wins
ARG A=1 B=$A
FROM busybox AS three
ARG TARGETARCH
ARG TARGETPLATFORM
`)
	args, err := ParseBuildArgs([]string{"GIVEN=from-cli", "VERSION=2.0", "EMPTY=x", "ZERO", "LOST"}, func(k string) (string, bool) {
		if k == "ZERO" {
			return "", true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	meta, err := d.Meta(args, Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, Platform{OS: "linux", Architecture: "amd64"})
	if err != nil {
		t.Fatal(err)
	}

	one := runStage(t, d, 0, meta, args, []string{"PATH=/bin"})
	for name, want := range map[string]string{
		"GLOBAL":  "<unset>", // global ARG not visible unless redeclared
		"VERSION": "2.0",     // redeclared: global value, which the build arg overrode
		"LOCAL":   "l-2.0",
		"BUILDX":  "<unset>", // declared, no value anywhere
		"EMPTY":   "x",
		"FROMENV": "l-2.0",
		"PATH":    "/bin",
	} {
		if got := lookup(one, name); got != want {
			t.Errorf("stage one %s = %q, want %q", name, got, want)
		}
	}
	if got := one.Env(); !reflect.DeepEqual(got, []string{"PATH=/bin", "FROMENV=l-2.0"}) {
		t.Errorf("Env = %q", got)
	}

	two := runStage(t, d, 1, meta, args, nil)
	for name, want := range map[string]string{
		"NODEFAULT": "<unset>",
		"DEF":       "fallback",
		"ALT":       "", // VERSION not declared in this stage, so no alternative
		"GIVEN":     "env-wins",
		"ZERO":      "", // --build-arg ZERO with ZERO= in the environment
		"A":         "1",
		"B":         "1", // earlier ARG in the same instruction is visible
		"VERSION":   "<unset>",
	} {
		if got := lookup(two, name); got != want {
			t.Errorf("stage two %s = %q, want %q", name, got, want)
		}
	}
	if got := two.Args()["GIVEN"]; got != "from-cli" {
		t.Errorf("Args GIVEN = %q (the ARG's own value, Env shadows it only for lookups)", got)
	}
	wantRun := []string{"GIVEN=env-wins", "DEF=fallback", "ALT=", "ZERO=", "A=1", "B=1"}
	if got := two.RunEnv(); !reflect.DeepEqual(got, wantRun) {
		t.Errorf("RunEnv = %q, want %q", got, wantRun)
	}

	three := runStage(t, d, 2, meta, args, nil)
	if lookup(three, "TARGETARCH") != "arm" || lookup(three, "TARGETPLATFORM") != "linux/arm/v7" || lookup(three, "BUILDARCH") != "<unset>" {
		t.Errorf("platform args: %v", three.Args())
	}

	used := map[string]bool{}
	for _, s := range []*Scope{one, two, three} {
		for k := range s.Args() {
			used[k] = true
		}
	}
	for _, k := range meta.Keys() {
		used[k] = true
	}
	if got := args.Unused(used); len(got) != 0 {
		t.Errorf("Unused = %q (LOST has no value so it is not reported)", got)
	}
	if got := args.Unused(map[string]bool{"GIVEN": true}); !reflect.DeepEqual(got, []string{"EMPTY", "VERSION", "ZERO"}) {
		t.Errorf("Unused = %q", got)
	}
}

func TestArgValueAlternatives(t *testing.T) {
	d := mustParse(t, `FROM busybox
ARG SET=value
ARG EMPTY=
ARG X1=${SET:-def} X2=${EMPTY:-def} X3=${NONE:-def} X4=${EMPTY-def} X5=${NONE-def}
ARG Y1=${SET:+alt} Y2=${EMPTY:+alt} Y3=${NONE:+alt} Y4=${EMPTY+alt}
`)
	s := runStage(t, d, 0, NewVars(), nil, nil)
	for name, want := range map[string]string{
		"X1": "value", "X2": "def", "X3": "def", "X4": "", "X5": "def",
		"Y1": "alt", "Y2": "", "Y3": "", "Y4": "alt",
	} {
		if got := lookup(s, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

func TestBuildArgOverridesAndUnexpandedDefault(t *testing.T) {
	d := mustParse(t, "FROM busybox\nARG BAD=${X:?must-be-set}\n")
	// Given as build arg: the default is never expanded, so its error can't fire.
	s := runStage(t, d, 0, NewVars(), BuildArgs{"BAD": ptr("ok")}, nil)
	if lookup(s, "BAD") != "ok" {
		t.Fatalf("BAD = %q", lookup(s, "BAD"))
	}
	_, err := d.Expand(d.Stages[0].Commands[0], NewScope(nil, NewVars(), nil))
	if err == nil || !strings.HasPrefix(err.Error(), "Dockerfile:2: ARG: BAD: ") || !strings.Contains(err.Error(), "must-be-set") {
		t.Fatalf("err = %v", err)
	}
}

func TestProxyArgs(t *testing.T) {
	d := mustParse(t, "FROM busybox\nARG no_proxy\nRUN env\n")
	args := BuildArgs{"HTTP_PROXY": ptr("http://proxy:3128"), "no_proxy": ptr("localhost"), "https_proxy": ptr("x")}
	s := runStage(t, d, 0, NewVars(), args, []string{"https_proxy=from-image"})
	wantRun := []string{"https_proxy=from-image", "no_proxy=localhost", "HTTP_PROXY=http://proxy:3128"}
	if got := s.RunEnv(); !reflect.DeepEqual(got, wantRun) {
		t.Errorf("RunEnv = %q, want %q", got, wantRun)
	}
	if got := s.Env(); !reflect.DeepEqual(got, []string{"https_proxy=from-image"}) {
		t.Errorf("Env = %q: proxy args must not reach the image config", got)
	}
	if got := s.Args(); !reflect.DeepEqual(got, map[string]string{"no_proxy": "localhost"}) {
		t.Errorf("Args = %v: only declared proxy args are recorded", got)
	}
	if _, ok := s.Lookup("HTTP_PROXY"); ok {
		t.Error("undeclared proxy arg visible to expansion")
	}
	if got := args.Unused(nil); len(got) != 0 {
		t.Errorf("proxy args reported unused: %q", got)
	}
}

func TestScopeEnvAndClone(t *testing.T) {
	s := NewScope([]string{"A=1", "PATH=/bin", "B=2"}, NewVars(), nil)
	s.SetEnv("PATH", "/usr/bin:/bin")
	s.SetEnv("C", "3")
	if got := s.Env(); !reflect.DeepEqual(got, []string{"A=1", "PATH=/usr/bin:/bin", "B=2", "C=3"}) {
		t.Errorf("Env = %q: replaced in place, new appended", got)
	}
	s.Declare(instructions.KeyValuePairOptional{Key: "V", Value: ptr("x")})
	c := s.Clone()
	c.SetEnv("A", "changed")
	c.Declare(instructions.KeyValuePairOptional{Key: "V", Value: ptr("y")})
	if lookup(s, "A") != "1" || lookup(s, "V") != "x" || lookup(c, "A") != "changed" || lookup(c, "V") != "y" {
		t.Error("clone shares state with the original")
	}
	if got := s.ArgPairs(); !reflect.DeepEqual(got, []string{"V=x"}) {
		t.Errorf("ArgPairs = %q", got)
	}
	if got := s.Keys(); !reflect.DeepEqual(got, []string{"A", "B", "C", "PATH", "V"}) {
		t.Errorf("Keys = %q", got)
	}
}

func TestParseBuildArgs(t *testing.T) {
	env := func(k string) (string, bool) {
		if k == "FROM_ENV" {
			return "env value", true
		}
		return "", false
	}
	got, err := ParseBuildArgs([]string{"A=1", "B=", "C=x=y", "FROM_ENV", "NOT_IN_ENV", "A=2"}, env)
	if err != nil {
		t.Fatal(err)
	}
	want := BuildArgs{"A": ptr("2"), "B": ptr(""), "C": ptr("x=y"), "FROM_ENV": ptr("env value"), "NOT_IN_ENV": nil}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v", got)
	}
	if _, ok := got.Value("NOT_IN_ENV"); ok {
		t.Error("unset env build arg counts as given")
	}
	for _, bad := range []string{"=v", "", " =x"} {
		if _, err := ParseBuildArgs([]string{bad}, env); err == nil || !strings.Contains(err.Error(), "empty name") {
			t.Errorf("%q: err = %v", bad, err)
		}
	}
}

func TestMeta(t *testing.T) {
	d := mustParse(t, `ARG A=a
ARG B=${A}-b
ARG C
ARG TARGETOS
ARG P=$TARGETPLATFORM
FROM scratch
`)
	meta, err := d.Meta(BuildArgs{"A": ptr("cli")}, Platform{OS: "linux", Architecture: "arm64"}, Platform{OS: "linux", Architecture: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"A": "cli", "B": "cli-b", "TARGETOS": "linux", "P": "linux/arm64", "TARGETVARIANT": "",
		"BUILDPLATFORM": "linux/amd64", "BUILDARCH": "amd64", "TARGETARCH": "arm64",
	} {
		if got, _ := meta.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if _, ok := meta.Get("C"); ok {
		t.Error("ARG without default or build arg is defined")
	}
	bad := mustParse(t, "ARG X=${Y:?needed}\nFROM scratch\n")
	if _, err := bad.Meta(nil, Platform{}, Platform{}); err == nil || !strings.HasPrefix(err.Error(), "Dockerfile:1: ") {
		t.Errorf("err = %v", err)
	}
}

func TestDeclared(t *testing.T) {
	s := NewScope([]string{"E=1"}, NewVars("G", "g"), nil)
	s.Declare(instructions.KeyValuePairOptional{Key: "NOVALUE"})
	s.Declare(instructions.KeyValuePairOptional{Key: "G"})
	if s.Declared("NOVALUE") || !s.Declared("G") || s.Declared("E") {
		t.Errorf("Declared wrong: %v", s.Args())
	}
}

// TestInheritArgs: a stage's scope can start from the args its parent stage ended with; they
// are visible at once, a default sees them, and a bare ARG keeps the inherited value.
func TestInheritArgs(t *testing.T) {
	d := mustParse(t, "FROM scratch AS base\nARG NAME=base\nFROM base AS dev\nARG NAME=\"$NAME-dev\"\nFROM dev\nARG NAME\n")
	base := runStage(t, d, 0, NewVars(), nil, nil)
	dev := NewScope(nil, NewVars(), nil)
	dev.InheritArgs(base)
	if got := lookup(dev, "NAME"); got != "base" {
		t.Fatalf("inherited before any ARG: NAME = %q", got)
	}
	applyStage(t, d, 1, dev)
	custom := NewScope(nil, NewVars(), nil)
	custom.InheritArgs(dev)
	applyStage(t, d, 2, custom)
	if got := lookup(custom, "NAME"); got != "base-dev" {
		t.Errorf("NAME = %q, want base-dev", got)
	}
	if got := custom.ArgPairs(); !reflect.DeepEqual(got, []string{"NAME=base-dev"}) {
		t.Errorf("ArgPairs = %q", got)
	}
	if got := lookup(base, "NAME"); got != "base" {
		t.Errorf("the parent's scope changed: NAME = %q", got)
	}
}

// applyStage applies stage i's ARGs to an existing scope, as the builder does.
func applyStage(t *testing.T, d *Dockerfile, i int, s *Scope) {
	t.Helper()
	for _, c := range d.Stages[i].Commands {
		x, err := d.Expand(c, s)
		if err != nil {
			t.Fatalf("Expand: %v", err)
		}
		if a, ok := x.(*instructions.ArgCommand); ok {
			for _, kv := range a.Args {
				s.Declare(kv)
			}
		}
	}
}
