package dockerfile

import (
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Base is what a stage's FROM resolves to.
type Base struct {
	Stage    int    // index of an earlier stage, -1 if the base is not a stage
	Image    string // image reference (expanded) when the base is an image
	Scratch  bool   // FROM scratch
	Platform string // expanded FROM --platform, "" if none
}

// BaseOf expands stage i's FROM name and --platform with the meta vars and
// resolves it: an earlier stage (by AS name, case-insensitive), "scratch", or
// an image reference.
func (d *Dockerfile) BaseOf(i int, meta *Vars) (Base, error) {
	if i < 0 || i >= len(d.Stages) {
		return Base{}, fmt.Errorf("%s: no stage %d (the Dockerfile has %d)", d.Name, i, len(d.Stages))
	}
	st := d.Stages[i]
	lex := shell.NewLex(d.Escape)
	name, _, err := lex.ProcessWord(st.BaseName, meta)
	if err != nil {
		return Base{}, at(d.Name, st.Line, fmt.Errorf("FROM %s: %w", st.BaseName, err))
	}
	if name == "" {
		return Base{}, at(d.Name, st.Line, fmt.Errorf("FROM %s: base name expands to an empty string", st.BaseName))
	}
	b := Base{Stage: -1}
	if st.Platform != "" {
		p, _, err := lex.ProcessWord(st.Platform, meta)
		if err != nil {
			return Base{}, at(d.Name, st.Line, fmt.Errorf("FROM --platform=%s: %w", st.Platform, err))
		}
		if _, err := ParsePlatform(p); err != nil {
			return Base{}, at(d.Name, st.Line, fmt.Errorf("FROM --platform=%s: %w", st.Platform, err))
		}
		b.Platform = p
	}
	if j, ok := d.earlierStage(name, i); ok {
		b.Stage = j
		return b, nil
	}
	if name == "scratch" {
		b.Scratch = true
		return b, nil
	}
	if st.Name != "" && strings.EqualFold(name, st.Name) {
		return Base{}, at(d.Name, st.Line, errors.New("stage "+st.Name+" uses itself as its base"))
	}
	b.Image = name
	return b, nil
}

// earlierStage finds a stage named name (case-insensitive) before stage before.
func (d *Dockerfile) earlierStage(name string, before int) (int, bool) {
	for j := 0; j < before && j < len(d.Stages); j++ {
		if d.Stages[j].Name != "" && strings.EqualFold(d.Stages[j].Name, name) {
			return j, true
		}
	}
	return -1, false
}
