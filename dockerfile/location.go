package dockerfile

import (
	"errors"
	"fmt"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// lineOf returns the first line of a command's source range, 0 if unknown.
func lineOf(cmd instructions.Command) int {
	if loc := cmd.Location(); len(loc) > 0 {
		return loc[0].Start.Line
	}
	return 0
}

// errorLine digs the line out of an error BuildKit decorated with a location.
func errorLine(err error) (int, bool) {
	var le *parser.LocationError
	if errors.As(err, &le) {
		for _, r := range le.Locations {
			if len(r) > 0 {
				return r[0].Start.Line, true
			}
		}
	}
	return 0, false
}

// at prefixes err with "name:line: ", or "name: " when the line is unknown.
func at(name string, line int, err error) error {
	if line > 0 {
		return fmt.Errorf("%s:%d: %w", name, line, err)
	}
	return fmt.Errorf("%s: %w", name, err)
}

// plainError strips BuildKit's location wrapper so only the message is kept;
// BuildKit's message texts are fine, their "line N" prefixes are replaced by ours.
func plainError(err error) error {
	var le *parser.LocationError
	if errors.As(err, &le) && le.Unwrap() != nil {
		return le.Unwrap()
	}
	return err
}
