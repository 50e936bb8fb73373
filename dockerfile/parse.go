package dockerfile

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Dockerfile is a parsed Dockerfile. It is not modified after Parse, so one
// value may serve concurrent readers.
type Dockerfile struct {
	Name     string
	MetaArgs []instructions.ArgCommand // ARGs before the first FROM
	Stages   []Stage
	Escape   rune     // escape token from the parser directive
	Warnings []string // parser warnings such as empty continuation lines, "name:line: text"
	// Directives are the parser directives at the top (syntax, check, escape), in order.
	Directives []Directive

	// nodes maps each command to the AST node it came from, so Expand can
	// re-parse a RUN into a fresh value instead of mutating shared mount state.
	nodes map[instructions.Command]*parser.Node
}

// Stage is one FROM and the instructions that follow it.
type Stage struct {
	Index    int
	Name     string // lowercased AS name, "" if none
	BaseName string // FROM argument as written (unexpanded)
	Platform string // FROM --platform as written
	Line     int    // line of the FROM
	Commands []instructions.Command
}

// Parse parses src. Syntax errors and unknown instructions are reported as
// "<name>:<line>: <message>".
func Parse(src Source) (*Dockerfile, error) {
	res, err := parser.Parse(bytes.NewReader(src.Data))
	if err != nil {
		line, _ := errorLine(err)
		return nil, at(src.Name, line, plainError(err))
	}
	dirs, err := directives(src.Data)
	if err != nil {
		return nil, at(src.Name, 0, err)
	}
	d := &Dockerfile{
		Name:       src.Name,
		Escape:     res.EscapeToken,
		Directives: dirs,
		nodes:      map[instructions.Command]*parser.Node{},
	}
	if c, ok := d.Directive("check"); ok {
		if _, err := ParseCheck(c.Value); err != nil {
			return nil, at(src.Name, c.Line, err)
		}
	}
	for _, w := range res.Warnings {
		line := 0
		if w.Location != nil {
			line = w.Location.Start.Line
		}
		d.Warnings = append(d.Warnings, at(src.Name, line, errors.New(w.Short)).Error())
	}
	firstLine := map[string]int{}
	for _, node := range res.AST.Children {
		v, err := parseNode(node)
		if err != nil {
			return nil, at(src.Name, node.StartLine, plainError(err))
		}
		switch c := v.(type) {
		case *instructions.Stage:
			st := Stage{
				Index:    len(d.Stages),
				Name:     c.Name,
				BaseName: c.BaseName,
				Platform: c.Platform,
				Line:     node.StartLine,
			}
			if st.Name != "" {
				if prev, dup := firstLine[st.Name]; dup {
					return nil, at(src.Name, node.StartLine, fmt.Errorf("duplicate stage name %q (first defined on line %d)", st.Name, prev))
				}
				firstLine[st.Name] = node.StartLine
			}
			d.Stages = append(d.Stages, st)
		case *instructions.ArgCommand:
			if len(d.Stages) == 0 {
				d.MetaArgs = append(d.MetaArgs, *c)
				continue
			}
			d.add(c, node)
		case instructions.Command:
			if len(d.Stages) == 0 {
				return nil, at(src.Name, node.StartLine, fmt.Errorf("%s before the first FROM: only ARG may come before FROM", strings.ToUpper(c.Name())))
			}
			d.add(c, node)
		default:
			return nil, at(src.Name, node.StartLine, fmt.Errorf("unexpected instruction %q", node.Value))
		}
	}
	if len(d.Stages) == 0 {
		return nil, fmt.Errorf("%s: no FROM instruction: a Dockerfile needs at least one stage", src.Name)
	}
	return d, nil
}

// add appends cmd to the current (last) stage.
func (d *Dockerfile) add(cmd instructions.Command, node *parser.Node) {
	st := &d.Stages[len(d.Stages)-1]
	st.Commands = append(st.Commands, cmd)
	d.nodes[cmd] = node
}

// StageByName finds a stage by its AS name (case-insensitive).
func (d *Dockerfile) StageByName(name string) (*Stage, bool) {
	for i := range d.Stages {
		if d.Stages[i].Name != "" && strings.EqualFold(d.Stages[i].Name, name) {
			return &d.Stages[i], true
		}
	}
	return nil, false
}

// stageNames lists the stages for error messages: names, or indexes of unnamed ones.
func (d *Dockerfile) stageNames() string {
	var names []string
	for _, st := range d.Stages {
		if st.Name != "" {
			names = append(names, st.Name)
		} else {
			names = append(names, fmt.Sprint(st.Index))
		}
	}
	return strings.Join(names, ", ")
}
