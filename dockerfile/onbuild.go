package dockerfile

import (
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// OnBuildCommands parses the ONBUILD triggers of a base image's config into
// the commands to run right after FROM, as Docker does. name (the base image)
// appears in errors. ONBUILD, FROM and MAINTAINER triggers are errors.
func OnBuildCommands(triggers []string, name string) ([]instructions.Command, error) {
	var out []instructions.Command
	for i, trigger := range triggers {
		fail := func(err error) error {
			return fmt.Errorf("%s: ONBUILD trigger %d (%q): %w", name, i+1, trigger, err)
		}
		res, err := parser.Parse(strings.NewReader(trigger))
		if err != nil {
			return nil, fail(plainError(err))
		}
		for _, node := range res.AST.Children {
			switch strings.ToUpper(node.Value) {
			case "ONBUILD":
				return nil, fail(fmt.Errorf("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"))
			case "FROM", "MAINTAINER":
				return nil, fail(fmt.Errorf("%s isn't allowed as an ONBUILD trigger", strings.ToUpper(node.Value)))
			}
			cmd, err := parseCommand(node)
			if err != nil {
				return nil, fail(plainError(err))
			}
			out = append(out, cmd)
		}
	}
	return out, nil
}
