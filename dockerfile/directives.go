package dockerfile

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Directive is a parser directive at the top of a Dockerfile: `# syntax=docker/dockerfile:1`,
// `# check=skip=JSONArgsRecommended;error=true` or "# escape=`".
//
// Kiln parses every Dockerfile with its own (BuildKit's) parser: a syntax directive is noted,
// never fetched or run as a frontend image; a check directive is validated as BuildKit
// validates it, but Kiln runs no build checks, so it changes nothing.
type Directive struct {
	Name  string // lower case: syntax, check or escape
	Value string
	Line  int
}

// CheckOptions is a parsed `# check=` directive.
type CheckOptions struct {
	Skip         []string // rule names, or ["all"]
	Experimental []string // rule names, or ["all"]
	Error        bool     // warnings of checks fail the build (under BuildKit)
}

// directives reads the parser directives at the top of data (after a shebang line or a BOM,
// which BuildKit skips too).
func directives(data []byte) ([]Directive, error) {
	data = bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF})
	offset := 0
	if first, rest, _ := bytes.Cut(data, []byte("\n")); bytes.HasPrefix(first, []byte("#!")) {
		data, offset = rest, 1
	}
	var p parser.DirectiveParser
	found, err := p.ParseAll(data)
	if err != nil {
		return nil, err
	}
	out := make([]Directive, 0, len(found))
	for _, d := range found {
		line := offset
		if len(d.Location) > 0 {
			line += d.Location[0].Start.Line
		}
		out = append(out, Directive{Name: d.Name, Value: d.Value, Line: line})
	}
	return out, nil
}

// Directive returns the parser directive named name, if the Dockerfile has it.
func (d *Dockerfile) Directive(name string) (Directive, bool) {
	for _, dir := range d.Directives {
		if dir.Name == name {
			return dir, true
		}
	}
	return Directive{}, false
}

// ParseCheck parses the value of a `# check=` directive: `;`-separated key=value pairs with
// keys skip (rule names, comma-separated, or all), experimental (the same) and error (a
// boolean). Anything else is an error, as in BuildKit.
func ParseCheck(value string) (CheckOptions, error) {
	var o CheckOptions
	value = strings.TrimSpace(value)
	if value == "" {
		return o, nil
	}
	for _, part := range strings.Split(value, ";") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return CheckOptions{}, fmt.Errorf("invalid check option %q: want key=value", part)
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "skip":
			o.Skip = splitRules(v)
		case "experimental":
			o.Experimental = splitRules(v)
		case "error":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return CheckOptions{}, fmt.Errorf("invalid check option %q: error must be true or false", part)
			}
			o.Error = b
		default:
			return CheckOptions{}, fmt.Errorf("invalid check option %q: known keys are skip, experimental and error", k)
		}
	}
	return o, nil
}

func splitRules(v string) []string {
	var out []string
	for _, r := range strings.Split(v, ",") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}

// parseNode turns one AST node into an instruction. BuildKit's parser reads a `# check=`
// comment right above an instruction as that instruction's lint settings, and its
// ParseInstruction dereferences a nil linter when it meets one, so a linter that reports
// nothing is always given.
func parseNode(node *parser.Node) (any, error) {
	return instructions.ParseInstructionWithLinter(node, linter.New(&linter.Config{}))
}

// parseCommand is parseNode for nodes that must be commands (not FROM).
func parseCommand(node *parser.Node) (instructions.Command, error) {
	v, err := parseNode(node)
	if err != nil {
		return nil, err
	}
	c, ok := v.(instructions.Command)
	if !ok {
		return nil, fmt.Errorf("%s is not allowed here", strings.ToUpper(node.Value))
	}
	return c, nil
}
