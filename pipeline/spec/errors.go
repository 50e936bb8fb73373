package spec

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in a pipeline file: FILE:LINE: key.path: what is wrong.
type Error struct {
	File string
	Line int    // 0 when unknown
	Path string // the key's path ("image.destination", "deploy.manifests[1]"); "" for the whole file
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error at the key path in p's file, for problems found after parsing (a
// manifest that does not exist, a flag the executor does not know). %w wraps as fmt.Errorf does.
func (p *Pipeline) Errorf(path, format string, args ...any) error {
	return p.errorAt(path, fmt.Errorf(format, args...))
}

func (p *Pipeline) errorAt(path string, err error) *Error {
	return &Error{File: p.File, Line: p.lineOf(path), Path: path, Err: err}
}

// lineOf is the line of path, or of its nearest parent with one (a key's value given in Go
// rather than in the file has no line of its own).
func (p *Pipeline) lineOf(path string) int {
	for path != "" {
		if l, ok := p.Lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// joinErrors joins errs in line order (nil if there are none).
func joinErrors(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	slices.SortStableFunc(errs, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return errors.Join(all...)
}
