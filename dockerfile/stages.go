package dockerfile

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// StagesFor returns the indexes of the stages needed to build target ("" =
// the last stage; otherwise a stage name or a numeric index), in Dockerfile
// order: the target, the stages its FROM chain depends on, and those any
// COPY --from or RUN --mount from= refers to (by name or index, after
// expansion with the meta vars), transitively.
func (d *Dockerfile) StagesFor(target string, meta *Vars) ([]int, error) {
	return d.StagesReplacing(target, meta, nil)
}

// StagesReplacing is StagesFor when some stages are replaced (by a named build context):
// replaced(name) says so for a stage's AS name, and such a stage depends on nothing.
func (d *Dockerfile) StagesReplacing(target string, meta *Vars, replaced func(name string) bool) ([]int, error) {
	start, err := d.targetIndex(target)
	if err != nil {
		return nil, err
	}
	need := map[int]bool{}
	queue := []int{start}
	for len(queue) > 0 {
		i := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if need[i] {
			continue
		}
		need[i] = true
		if replaced != nil && d.Stages[i].Name != "" && replaced(d.Stages[i].Name) {
			continue
		}
		deps, err := d.dependencies(i, meta)
		if err != nil {
			return nil, err
		}
		queue = append(queue, deps...)
	}
	out := make([]int, 0, len(need))
	for i := range need {
		out = append(out, i)
	}
	sort.Ints(out)
	return out, nil
}

// targetIndex resolves a --target value.
func (d *Dockerfile) targetIndex(target string) (int, error) {
	if target == "" {
		return len(d.Stages) - 1, nil
	}
	if st, ok := d.StageByName(target); ok {
		return st.Index, nil
	}
	if n, err := strconv.Atoi(target); err == nil && n >= 0 && n < len(d.Stages) {
		return n, nil
	}
	return 0, fmt.Errorf("%s: target stage %q not found; stages: %s", d.Name, target, d.stageNames())
}

// dependencies lists the stages stage i reads from: its base and every
// COPY --from / RUN --mount from= that names a stage.
func (d *Dockerfile) dependencies(i int, meta *Vars) ([]int, error) {
	var deps []int
	base, err := d.BaseOf(i, meta)
	if err != nil {
		return nil, err
	}
	if base.Stage >= 0 {
		deps = append(deps, base.Stage)
	}
	lex := shell.NewLex(d.Escape)
	for _, cmd := range d.Stages[i].Commands {
		for _, from := range ReadsFrom(cmd) {
			name, _, err := lex.ProcessWord(from, meta)
			if err != nil {
				return nil, at(d.Name, lineOf(cmd), fmt.Errorf("--from=%s: %w", from, err))
			}
			j, isStage, err := d.fromStage(name, i)
			if err != nil {
				return nil, at(d.Name, lineOf(cmd), err)
			}
			if isStage {
				deps = append(deps, j)
			}
		}
	}
	return deps, nil
}

// ReadsFrom lists the stages or images an instruction reads files from, unexpanded: the
// --from of a COPY, and the from= of a RUN's mounts (which the parser knows before expansion).
func ReadsFrom(cmd instructions.Command) []string {
	var out []string
	switch c := cmd.(type) {
	case *instructions.CopyCommand:
		if c.From != "" {
			out = append(out, c.From)
		}
	case *instructions.RunCommand:
		for _, m := range instructions.GetMounts(c) {
			if m.From != "" {
				out = append(out, m.From)
			}
		}
	}
	return out
}

// FromStage resolves a COPY --from / RUN --mount from= value (already
// expanded) used in stage current: an earlier stage by name or index
// (isStage true), or an image reference (isStage false). Naming the current
// or a later stage is an error, as stages are built in order.
func (d *Dockerfile) FromStage(from string, current int) (index int, isStage bool, err error) {
	return d.fromStage(from, current)
}

func (d *Dockerfile) fromStage(from string, current int) (int, bool, error) {
	if n, err := strconv.Atoi(from); err == nil {
		if n < 0 || n >= current {
			return 0, false, fmt.Errorf("--from=%s: refers to the current or a later stage; only earlier stages can be used (this is stage %d)", from, current)
		}
		return n, true, nil
	}
	if j, ok := d.earlierStage(from, current); ok {
		return j, true, nil
	}
	if st, ok := d.StageByName(from); ok {
		return 0, false, fmt.Errorf("--from=%s: stage %q is defined later (line %d); only earlier stages can be used", from, strings.ToLower(from), st.Line)
	}
	return -1, false, nil
}
