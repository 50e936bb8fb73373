package spec

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// schemaCannotCatch are the bad files the schema accepts, and why.
func schemaCannotCatch() map[string]string {
	return map[string]string{
		"bad-reference.yaml":       "image references are checked by go-containerregistry's parser",
		"bad-variable-syntax.yaml": "${VAR} syntax is checked by the parser",
		"undefined-variable.yaml":  "found by Expand",
		"expanded-bad-value.yaml":  "found by Expand",
		"two-documents.yaml":       "the schema sees the first document only",
		"zero-duration.yaml":       "0s matches the duration pattern",
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// validate checks a YAML file against the schema, as an editor does: YAML to JSON first.
func validate(s *jsonschema.Schema, data []byte) error {
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return err
	}
	js, err := json.Marshal(v)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}

func TestSchemaAcceptsGoodFiles(t *testing.T) {
	s := compileSchema(t)
	for _, file := range testFiles(t, "good") {
		if err := validate(s, readFile(t, file)); err != nil {
			t.Errorf("%s: %v", file, err)
		}
	}
	if err := validate(s, docExample(t)); err != nil {
		t.Errorf("doc.go's example: %v", err)
	}
}

// TestSchemaRejectsBadFiles checks that the schema rejects every bad file it can, at a key the
// parser finds fault with too (or the parent of one).
func TestSchemaRejectsBadFiles(t *testing.T) {
	s := compileSchema(t)
	for _, file := range testFiles(t, "bad") {
		why, accepts := schemaCannotCatch()[filepath.Base(file)]
		err := validate(s, readFile(t, file))
		switch {
		case accepts && err != nil:
			t.Errorf("%s: the schema rejects it now (%v): remove it from schemaCannotCatch", file, err)
		case !accepts && err == nil:
			t.Errorf("%s: the schema accepts it", file)
		case accepts:
			t.Logf("%s: the schema accepts it: %s", file, why)
		default:
			_, perr := loadExpanded(file)
			if !sameFault(perr, err) {
				t.Errorf("%s: the schema and the parser find fault at different keys:\n%v\n%v", file, err, perr)
			}
		}
	}
}

// sameFault reports whether a schema error is at a key a parser error names, or at its parent
// (where unknown and missing keys are). A YAML error (no schema locations) counts as the same.
func sameFault(parser, schema error) bool {
	var locs [][]string
	var collect func(e *jsonschema.ValidationError)
	collect = func(e *jsonschema.ValidationError) {
		locs = append(locs, e.InstanceLocation)
		for _, c := range e.Causes {
			collect(c)
		}
	}
	ve, ok := schema.(*jsonschema.ValidationError)
	if !ok {
		return true
	}
	collect(ve)
	for _, e := range unwrapAll(parser) {
		path := strings.FieldsFunc(e.(*Error).Path, func(r rune) bool { return r == '.' || r == '[' || r == ']' })
		for _, l := range locs {
			if len(l) <= len(path) && len(l) >= len(path)-1 && slices.Equal(l, path[:len(l)]) {
				return true
			}
		}
	}
	return false
}

// TestSchemaMatchesParser compares, section by section, the keys the parser knows and
// requires with the schema's properties and required lists.
func TestSchemaMatchesParser(t *testing.T) {
	var root map[string]any
	if err := json.Unmarshal(Schema, &root); err != nil {
		t.Fatal(err)
	}
	compareSection(t, "(top)", pipelineFields(new(Pipeline)), root)
}

func compareSection(t *testing.T, path string, fields []field, schema map[string]any) {
	props, _ := schema["properties"].(map[string]any)
	if schema["additionalProperties"] != false {
		t.Errorf("%s: additionalProperties is not false", path)
	}
	var keys, required []string
	for _, f := range fields {
		keys = append(keys, f.key)
		if f.required {
			required = append(required, f.key)
		}
	}
	var schemaRequired []string
	for _, r := range asSlice(schema["required"]) {
		schemaRequired = append(schemaRequired, r.(string))
	}
	if a, b := sorted(keys), sorted(mapKeys(props)); !slices.Equal(a, b) {
		t.Errorf("%s: the parser knows %q, the schema %q", path, a, b)
	}
	if a, b := sorted(required), sorted(schemaRequired); !slices.Equal(a, b) {
		t.Errorf("%s: the parser requires %q, the schema %q", path, a, b)
	}
	for _, f := range fields {
		sub, _ := props[f.key].(map[string]any)
		if _, ok := sub["properties"]; ok != (f.fields != nil) {
			t.Errorf("%s.%s: a section in one and not in the other", path, f.key)
		}
		if f.fields != nil && sub != nil {
			compareSection(t, f.key, f.fields(), sub)
		}
	}
}

// TestSchemaDescriptions checks that every property has a description (editors show it).
func TestSchemaDescriptions(t *testing.T) {
	var root map[string]any
	if err := json.Unmarshal(Schema, &root); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, s map[string]any)
	walk = func(path string, s map[string]any) {
		props, _ := s["properties"].(map[string]any)
		for k, v := range props {
			p := v.(map[string]any)
			if d, _ := p["description"].(string); strings.TrimSpace(d) == "" {
				t.Errorf("%s.%s has no description", path, k)
			}
			walk(path+"."+k, p)
		}
	}
	walk("", root)
}

// TestSchemaDefaults checks the schema's defaults against the Go defaults.
func TestSchemaDefaults(t *testing.T) {
	var root map[string]any
	if err := json.Unmarshal(Schema, &root); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"executorImage": DefaultExecutorImage, "registrySecret": DefaultRegistrySecret,
		"build.workdir": (&Build{}).WorkdirOrDefault(), "image.dockerfile": (&Image{}).DockerfileOrDefault(),
		"image.context": (&Image{}).ContextOrDefault(), "image.cache": false, "image.cacheCopyLayers": false,
		"deploy.wait": (&Deploy{}).ShouldWait(), "deploy.timeout": (&Deploy{}).TimeoutOrDefault(),
	}
	got := map[string]any{}
	var walk func(path string, s map[string]any)
	walk = func(path string, s map[string]any) {
		props, _ := s["properties"].(map[string]any)
		for k, v := range props {
			p := v.(map[string]any)
			if d, ok := p["default"]; ok {
				got[strings.TrimPrefix(path+"."+k, ".")] = d
			}
			walk(path+"."+k, p)
		}
	}
	walk("", root)
	if d, err := time.ParseDuration(got["deploy.timeout"].(string)); err == nil {
		got["deploy.timeout"] = d
	}
	if a, b := sorted(mapKeys(got)), sorted(mapKeys(want)); !slices.Equal(a, b) {
		t.Errorf("the schema has defaults for %q, the Go code for %q", a, b)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: the schema's default is %v, the Go default %v", k, got[k], w)
		}
	}
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func mapKeys[V any](m map[string]V) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }
