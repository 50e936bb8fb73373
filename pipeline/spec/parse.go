package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads and parses the pipeline file at path (see Parse).
func Load(path string) (*Pipeline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse reads a pipeline file's content; file names it in errors and becomes Pipeline.File.
// Every problem is reported, in line order, joined with errors.Join; each is an *Error naming
// the file, the line and the key. Parse applies no defaults: fields left out stay zero, and the
// ...OrDefault methods give the values the stages use. ${VAR} references stay as written until
// Expand.
func Parse(file string, data []byte) (*Pipeline, error) {
	root, err := parseYAML(file, data)
	if err != nil {
		return nil, err
	}
	p := &Pipeline{File: file, Lines: map[string]int{}}
	d := &decoder{file: file, lines: p.Lines}
	d.pipeline(root, p)
	errs := append(d.errs, p.check(false)...)
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return p, nil
}

// parseYAML returns the root node of the file's one YAML document.
func parseYAML(file string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	empty := &Error{File: file, Err: errors.New("the file is empty: give name and at least one of build, image, deploy")}
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, empty
		}
		return nil, syntaxError(file, err)
	}
	if len(doc.Content) == 0 {
		return nil, empty
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, syntaxError(file, err)
		}
		return nil, &Error{File: file, Line: next.Line, Err: errors.New("a second YAML document: a pipeline file holds one")}
	}
	return doc.Content[0], nil
}

// syntaxError turns yaml's "yaml: line 3: ..." into "FILE:3: ...".
func syntaxError(file string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &Error{File: file}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, text, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(n); err == nil {
				e.Line, msg = line, text
			}
		}
	}
	e.Err = oneLine("%s", msg)
	return e
}

// decoder turns the YAML tree into a Pipeline, recording every key's line and collecting
// errors of structure: unknown, duplicate and missing keys, wrong types, empty values.
type decoder struct {
	file  string
	lines map[string]int
	errs  []*Error
}

func (d *decoder) fail(line int, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Path: path, Err: oneLine(format, args...)})
}

// oneLine formats a message about the file's values as one line, so that each error of a
// file is a line of the joined errors whatever the values hold.
func oneLine(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return errors.New(strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(msg))
}

// pipeline decodes the root mapping.
func (d *decoder) pipeline(n *yaml.Node, p *Pipeline) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		d.fail(n.Line, "", "the file is empty: give name and at least one of build, image, deploy")
		return
	}
	if !d.object(n, "", pipelineFields(p)) {
		return
	}
	if d.lines["build"] == 0 && d.lines["image"] == 0 && d.lines["deploy"] == 0 {
		d.fail(n.Line, "", "no stage: give at least one of build, image, deploy")
	}
}

// object decodes a mapping into fields; false if n is not a mapping.
func (d *decoder) object(n *yaml.Node, path string, fields []field) bool {
	if !d.kind(n, yaml.MappingNode, path) {
		return false
	}
	seen := d.keys(n, path, func(k, v *yaml.Node, kp string) {
		f := findField(fields, k.Value)
		if f == nil {
			d.fail(k.Line, kp, "unknown key%s", suggest(k.Value, path, fields))
			return
		}
		d.lines[kp] = k.Line
		f.decode(d, v, kp)
	})
	line := d.lines[path]
	if line == 0 {
		line = n.Line
	}
	for _, f := range fields {
		if f.required && seen[f.key] == 0 {
			d.fail(line, join(path, f.key), "missing: %s", f.hint)
		}
	}
	return true
}

// keys calls each with every key of mapping n and its value, after reporting keys that are not
// plain scalars and duplicates. It returns the line of each key.
func (d *decoder) keys(n *yaml.Node, path string, each func(k, v *yaml.Node, kp string)) map[string]int {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			d.fail(k.Line, path, "a key must be a plain word, not %s", describe(resolve(k)))
			continue
		}
		kp := join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.fail(k.Line, kp, "duplicate key (first on line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		each(k, v, kp)
	}
	return seen
}

// kind reports whether n is of kind want, failing with what it is instead.
func (d *decoder) kind(n *yaml.Node, want yaml.Kind, path string) bool {
	if n.Kind == want {
		return true
	}
	what := map[yaml.Kind]string{yaml.MappingNode: "a mapping of keys", yaml.SequenceNode: "a list"}[want]
	d.fail(n.Line, path, "expected %s, got %s", what, describe(n))
	return false
}

// resolve follows an alias to its anchored node.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// describe names what a node is, for "expected X, got Y".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
	default:
		return "an alias"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:37] + "..."
	}
	switch tag := n.ShortTag(); tag {
	case "!!null":
		return "nothing"
	case "!!str":
		return "string " + strconv.Quote(v)
	case "!!bool":
		return "boolean " + v
	case "!!int", "!!float":
		return "number " + v
	case "!!timestamp":
		return "date " + v
	default:
		return "a value tagged " + tag
	}
}

// join appends a key to a path: "image" + "destination" = "image.destination".
func join(path, key string) string {
	if strings.IndexFunc(key, func(r rune) bool { return !strconv.IsPrint(r) }) >= 0 {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }
