package spec

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// field is one key the file may hold: how its value decodes, and whether it must be there.
// The tables below are the parser's whole vocabulary; the schema test compares them with
// schema.json so the two cannot drift.
type field struct {
	key      string
	required bool
	hint     string // for a missing required key: what to give
	decode   func(d *decoder, n *yaml.Node, path string)
	fields   func() []field // a nested section's fields; nil for values
}

func pipelineFields(p *Pipeline) []field {
	return []field{
		{key: "name", required: true, hint: "the app's name, e.g. name: minimalapi", decode: text(&p.Name)},
		{key: "namespace", decode: text(&p.Namespace)},
		section("source", &p.Source, sourceFields),
		{key: "executorImage", decode: text(&p.ExecutorImage)},
		{key: "registrySecret", decode: text(&p.RegistrySecret)},
		section("build", &p.Build, buildFields),
		section("image", &p.Image, imageFields),
		section("deploy", &p.Deploy, deployFields),
	}
}

func sourceFields(s *Source) []field {
	return []field{
		{key: "git", required: true, hint: "the repository's URL, e.g. git: https://github.com/me/app.git", decode: text(&s.Git)},
		{key: "ref", decode: text(&s.Ref)},
	}
}

func buildFields(b *Build) []field {
	return []field{
		{key: "image", required: true, hint: "the image to run the command in, e.g. image: golang:1.26", decode: text(&b.Image)},
		{key: "command", required: true, hint: "the command to run, e.g. command: make build", decode: command(&b.Command)},
		{key: "workdir", decode: text(&b.Workdir)},
		{key: "output", decode: text(&b.Output)},
		{key: "env", decode: stringMap(&b.Env, envKey)},
	}
}

func imageFields(i *Image) []field {
	return []field{
		{key: "dockerfile", decode: text(&i.Dockerfile)},
		{key: "context", decode: text(&i.Context)},
		{key: "destination", required: true, decode: destination(&i.Destinations),
			hint: "the image to push, e.g. destination: registry.example.com/team/app:${BUILD_NUMBER}"},
		{key: "cache", decode: boolean(&i.Cache)},
		{key: "cacheRepo", decode: text(&i.CacheRepo)},
		{key: "cacheCopyLayers", decode: boolean(&i.CacheCopyLayers)},
		{key: "target", decode: text(&i.Target)},
		{key: "buildArgs", decode: stringMap(&i.BuildArgs, envKey)},
		{key: "flags", decode: list(&i.Flags, false)},
	}
}

func deployFields(dp *Deploy) []field {
	return []field{
		{key: "manifests", required: true, hint: "the YAML files to apply, e.g. manifests: [app.yaml]", decode: list(&dp.Manifests, true)},
		{key: "replacements", decode: stringMap(&dp.Replacements, replacementKey)},
		{key: "wait", decode: optBool(&dp.Wait)},
		{key: "timeout", decode: duration(&dp.Timeout)},
	}
}

// section is a key holding a mapping of further keys, decoded into a new T.
func section[T any](key string, p **T, fields func(*T) []field) field {
	return field{key: key, fields: func() []field { return fields(new(T)) },
		decode: func(d *decoder, n *yaml.Node, path string) {
			v := new(T)
			if d.object(n, path, fields(v)) {
				*p = v
			}
		}}
}

func findField(fields []field, key string) *field {
	for i := range fields {
		if fields[i].key == key {
			return &fields[i]
		}
	}
	return nil
}

// text decodes a non-empty string.
func text(p *string) func(*decoder, *yaml.Node, string) {
	return func(d *decoder, n *yaml.Node, path string) {
		if s, ok := d.str(n, path, false); ok {
			*p = s
		}
	}
}

// str returns n's string. A number or boolean is refused, so that `tag: 1.10` cannot quietly
// become "1.1"; so is "" unless empty is set.
func (d *decoder) str(n *yaml.Node, path string, empty bool) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		hint := ""
		if n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null" {
			hint = " (quote it for a string: " + strconv.Quote(n.Value) + ")"
		}
		d.fail(n.Line, path, "expected a string, got %s%s", describe(n), hint)
		return "", false
	}
	if !empty && strings.TrimSpace(n.Value) == "" {
		d.fail(n.Line, path, "is empty")
		return "", false
	}
	return n.Value, true
}

func boolean(p *bool) func(*decoder, *yaml.Node, string) {
	return func(d *decoder, n *yaml.Node, path string) {
		if b, ok := d.boolean(n, path); ok {
			*p = b
		}
	}
}

func optBool(p **bool) func(*decoder, *yaml.Node, string) {
	return func(d *decoder, n *yaml.Node, path string) {
		if b, ok := d.boolean(n, path); ok {
			*p = &b
		}
	}
}

// boolean accepts true and false only: "yes" is a string in YAML 1.2.
func (d *decoder) boolean(n *yaml.Node, path string) (bool, bool) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
		return strings.EqualFold(n.Value, "true"), true
	}
	d.fail(n.Line, path, "expected true or false, got %s", describe(n))
	return false, false
}

// list decodes a list of non-empty strings; required: it must have at least one.
func list(p *[]string, required bool) func(*decoder, *yaml.Node, string) {
	return func(d *decoder, n *yaml.Node, path string) {
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
			d.fail(n.Line, path, "expected a list, got %s (write [%s])", describe(n), n.Value)
			return
		}
		if d.kind(n, yaml.SequenceNode, path) {
			*p = d.items(n, path, required, false)
		}
	}
}

// items decodes the strings of list n, recording their lines.
func (d *decoder) items(n *yaml.Node, path string, required, empty bool) []string {
	if required && len(n.Content) == 0 {
		d.fail(n.Line, path, "the list is empty")
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		ip := index(path, i)
		d.lines[ip] = item.Line
		if s, ok := d.str(resolve(item), ip, empty); ok {
			out = append(out, s)
		}
	}
	return out
}

// stringOrList decodes one string or a non-empty list of strings (empty: items may be "").
func (d *decoder) stringOrList(n *yaml.Node, path string, empty bool) (one string, list []string, ok bool) {
	switch {
	case n.Kind == yaml.SequenceNode:
		list = d.items(n, path, true, empty)
		return "", list, len(list) > 0
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str":
		one, ok = d.str(n, path, false)
		return one, nil, ok
	}
	d.fail(n.Line, path, "expected a string or a list of strings, got %s", describe(n))
	return "", nil, false
}

func destination(p *[]string) func(*decoder, *yaml.Node, string) {
	return func(d *decoder, n *yaml.Node, path string) {
		if one, list, ok := d.stringOrList(n, path, false); ok && list == nil {
			*p = []string{one}
		} else if ok {
			*p = list
		}
	}
}

// command decodes a shell line or an exec-form list, whose arguments may be "" but not its program.
func command(p *Command) func(*decoder, *yaml.Node, string) {
	return func(d *decoder, n *yaml.Node, path string) {
		one, list, ok := d.stringOrList(n, path, true)
		switch {
		case !ok:
		case list == nil:
			p.Shell = one
		case strings.TrimSpace(list[0]) == "":
			d.fail(n.Content[0].Line, index(path, 0), "the program to run is empty")
		default:
			p.Exec = list
		}
	}
}

// stringMap decodes a mapping of strings. Numbers and booleans are taken as written
// (CGO_ENABLED: 0), as environments hold only strings. badKey says what is wrong with a key.
func stringMap(p *map[string]string, badKey func(string) string) func(*decoder, *yaml.Node, string) {
	return func(d *decoder, n *yaml.Node, path string) {
		if !d.kind(n, yaml.MappingNode, path) {
			return
		}
		m := map[string]string{}
		d.keys(n, path, func(k, v *yaml.Node, kp string) {
			if msg := badKey(k.Value); msg != "" {
				d.fail(k.Line, path, "%s", msg)
				return
			}
			d.lines[kp] = k.Line
			if v.Kind != yaml.ScalarNode || v.ShortTag() == "!!null" {
				d.fail(v.Line, kp, "expected a string, got %s", describe(v))
				return
			}
			m[k.Value] = v.Value
		})
		*p = m
	}
}

func envKey(k string) string {
	if k == "" || strings.ContainsAny(k, "=\x00") {
		return fmt.Sprintf("%q is not a variable name", k)
	}
	return ""
}

func replacementKey(k string) string {
	if strings.TrimSpace(k) == "" {
		return fmt.Sprintf("the text to replace is empty (%q): give the placeholder, e.g. <TAG>: ${BUILD_NUMBER}", k)
	}
	return ""
}

func duration(p *Duration) func(*decoder, *yaml.Node, string) {
	return func(d *decoder, n *yaml.Node, path string) {
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			d.fail(n.Line, path, "expected a duration such as 90s or 5m, got %s", describe(n))
			return
		}
		v, err := time.ParseDuration(n.Value)
		switch {
		case err != nil:
			d.fail(n.Line, path, "%q is not a duration: write it as 90s, 5m or 1h30m", n.Value)
		case v <= 0:
			d.fail(n.Line, path, "%q: must be more than zero", n.Value)
		default:
			p.Duration = v
		}
	}
}
