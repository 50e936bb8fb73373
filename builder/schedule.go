package builder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/internal/dirspread"
	"github.com/kilnbuild/kiln/internal/runner"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// Parallel stages. A stage starts once the stages it builds on (FROM) and reads from (COPY
// --from, RUN --mount from=) are done. One stage at a time uses the build's root, as a
// sequential build does; while it is busy, other ready stages run in side roots of their own,
// <work dir>/roots/<index>, each with its own snapshotter, up to WithParallelStages stages at
// once. The target always runs in the root. A side root's RUN runs as directory mode runs it;
// in a pod, where the root is "/", the same when the pod may create namespaces, and otherwise
// chrooted only (runner.RunChrooted): a stage whose RUN needs a mount or --network=none then
// waits for the root, and the log says why. With one stage at a time the order and the root's
// handling are exactly the sequential build's.

// rootKind says where a started stage runs.
type rootKind int

const (
	inRoot rootKind = iota // the build's root
	inSide                 // a side root in the work dir
	noRoot                 // a stage a named context replaces: no filesystem at all
)

// stageOutcome is how a started stage ended.
type stageOutcome struct {
	idx  int
	kind rootKind
	dir  string // the side root
	view *build
	img  v1.Image
	err  error
}

// scheduler starts a build's stages in dependency order. Only its goroutine (runStages)
// touches the build's shared state; stages run in views (stageView) and report back.
type scheduler struct {
	b        *build
	plan     []int
	limit    int
	parallel bool // stages may overlap: output lines and errors name their stage
	deps     map[int]stageDependencies
	external map[int][]string // a stage's --from references that are images or contexts
	target   int
	started  map[int]bool
	done     map[int]bool
	running  map[int]rootKind
	rootBusy bool
	// reserved is a stage the root is kept for, since it builds on what the root holds now (-1: none).
	reserved int
	side     *sideSupport
	outcomes chan stageOutcome
	abort    context.CancelFunc // stops the running stages once one failed
	removals sync.WaitGroup     // side roots no longer needed, being removed
}

// sideSupport says whether stages can run in side roots here, and how their RUNs run there.
type sideSupport struct {
	ok, chrootOnly bool
	refused        map[int]bool // stages told they must wait for the root
}

func newScheduler(b *build, plan []int) *scheduler {
	sc := &scheduler{b: b, plan: plan, limit: b.o.parallelStages, deps: map[int]stageDependencies{},
		external: map[int][]string{}, target: plan[len(plan)-1], started: map[int]bool{}, done: map[int]bool{},
		running: map[int]rootKind{}, reserved: -1, outcomes: make(chan stageOutcome, len(plan))}
	if sc.limit < 1 {
		sc.limit = defaultParallelStages
	}
	inPlan := map[int]bool{}
	for _, j := range plan {
		inPlan[j] = true
	}
	for _, j := range plan {
		d := b.stageDeps(j)
		if !inPlan[d.base] {
			d.base = -1
		}
		for i := range d.from {
			if !inPlan[i] {
				delete(d.from, i)
			}
		}
		sc.deps[j] = d
		sc.external[j] = b.externalFroms(j)
	}
	sc.parallel = sc.limit > 1 && sc.hasIndependentPair()
	if sc.parallel {
		// Before any stage starts: in a pod, the probe's scratch directory lies in the root
		// the first stage is about to clear.
		sc.side = b.probeSide()
		sc.parallel = sc.side.ok
	}
	return sc
}

// runStages builds the stages of plan (the target last) and returns the target's image. The
// first stage that fails cancels the others, and its error is returned.
func (b *build) runStages(ctx context.Context, plan []int) (v1.Image, error) {
	sc := newScheduler(b, plan)
	// Cancelled only when a stage fails: the images of a successful build keep reading base
	// layers through the context they were pulled with, after Build returns.
	ctx, sc.abort = context.WithCancel(ctx)
	defer sc.removals.Wait()
	var first error
	fail := func(err error) {
		if first == nil {
			first = err
			sc.abort()
		}
	}
	for len(sc.done) < len(plan) {
		if first == nil {
			sc.startReady(ctx)
		}
		if len(sc.running) == 0 {
			break
		}
		out := <-sc.outcomes
		delete(sc.running, out.idx)
		out.view.flushOutput()
		if out.kind == inRoot {
			sc.rootBusy = false
			b.rootHolds = out.view.rootHolds
		}
		if out.err != nil {
			if out.kind == inRoot {
				b.rootHolds = -1
			}
			fail(sc.stageError(out.idx, out.err))
			sc.discard(out)
			continue
		}
		sc.done[out.idx] = true
		b.results[out.idx] = &stageResult{image: out.img}
		b.merge(out.idx, out.view)
		if first != nil {
			sc.discard(out)
			continue
		}
		if err := sc.after(out); err != nil {
			fail(err)
		}
	}
	if first != nil {
		return nil, first
	}
	if len(sc.done) < len(plan) {
		return nil, fmt.Errorf("builder: stages %v could not be scheduled", sc.unstarted())
	}
	return b.results[sc.target].image, nil
}

// startReady starts ready stages while the bound allows.
func (sc *scheduler) startReady(ctx context.Context) {
	for len(sc.running) < sc.limit {
		j, kind, ok := sc.pick()
		if !ok {
			return
		}
		sc.start(ctx, j, kind)
	}
}

// pick chooses the next stage to start and where: the root goes to the stage it is reserved
// for, or else to the first ready stage in order; side roots to other ready stages but the target.
func (sc *scheduler) pick() (int, rootKind, bool) {
	for _, j := range sc.plan {
		if sc.ready(j) && sc.b.replacesStage(sc.b.df.Stages[j].Name) {
			return j, noRoot, true
		}
	}
	if !sc.rootBusy {
		if r := sc.reserved; r >= 0 {
			if sc.ready(r) {
				return r, inRoot, true
			}
		} else {
			for _, j := range sc.plan {
				if sc.ready(j) {
					return j, inRoot, true
				}
			}
		}
	}
	if sc.limit < 2 {
		return 0, 0, false
	}
	for _, j := range sc.plan {
		if j != sc.target && j != sc.reserved && sc.ready(j) && sc.sideOK(j) {
			return j, inSide, true
		}
	}
	return 0, 0, false
}

// ready reports whether stage j can start now: not started, what it reads done, and nothing
// it shares with a running stage (an image or context both unpack, a stage's files both
// unpack because no directory holds them yet).
func (sc *scheduler) ready(j int) bool {
	if sc.started[j] {
		return false
	}
	d := sc.deps[j]
	if d.base >= 0 && !sc.done[d.base] {
		return false
	}
	for i := range d.from {
		if !sc.done[i] {
			return false
		}
	}
	for k := range sc.running {
		if sc.conflict(j, k) {
			return false
		}
	}
	return true
}

func (sc *scheduler) conflict(j, k int) bool {
	for _, ref := range sc.external[j] {
		if slices.Contains(sc.external[k], ref) {
			return true
		}
	}
	for i := range sc.deps[j].from {
		if _, saved := sc.b.saved[i]; !saved && sc.deps[k].from[i] {
			return true
		}
	}
	return false
}

// start runs stage j in a goroutine, in a view of the build for the root kind chosen.
func (sc *scheduler) start(ctx context.Context, j int, kind rootKind) {
	b := sc.b
	sc.started[j] = true
	sc.running[j] = kind
	out := stageOutcome{idx: j, kind: kind}
	var v *build
	switch kind {
	case inRoot:
		sc.rootBusy = true
		if sc.reserved == j {
			sc.reserved = -1
		}
		v = b.stageView(j, b.root, b.snap, b.rootHolds, sc.parallel)
	case inSide:
		out.dir = filepath.Join(b.workDir, "roots", strconv.Itoa(j))
		v = b.stageView(j, out.dir, nil, -1, sc.parallel)
		v.snap = v.newSnapshotter(out.dir)
		v.chrootOnly = sc.side.chrootOnly
		how := ""
		if v.chrootOnly {
			how = ", RUN chrooted only"
		}
		v.note(b.df.Stages[j].Line, "stage %s runs alongside %s in a root of its own (%s%s)",
			stageLabel(b.df.Stages[j].Name, j), sc.runningLabels(j), out.dir, how)
	default:
		v = b.stageView(j, b.root, b.snap, -1, sc.parallel)
	}
	out.view = v
	go func() {
		if out.dir != "" {
			if err := freshDir(out.dir); err != nil {
				out.err = fmt.Errorf("side root for stage %d: %w", j, err)
				sc.outcomes <- out
				return
			}
		}
		out.img, out.err = v.runStage(ctx, j, j == sc.target)
		sc.outcomes <- out
	}()
}

// after decides, once stage out.idx is done, what happens to the filesystem it left: a side
// root is kept for later COPY --from, or removed; the root is kept for the next stage built
// on it, moved aside for later ones that read it, or left to the next stage to clear.
func (sc *scheduler) after(out stageOutcome) error {
	b := sc.b
	switch out.kind {
	case inSide:
		if out.view.rootHolds == out.idx && sc.readBy(out.idx, false) {
			if _, ok := b.saved[out.idx]; !ok {
				b.saved[out.idx] = out.dir
				return nil
			}
		}
		sc.discard(out)
		return nil
	case noRoot:
		return nil
	}
	idx := out.idx
	if b.rootHolds != idx {
		return nil
	}
	if next := sc.firstUnstarted(); next >= 0 && sc.deps[next].base == idx && sc.depsStarted(next) {
		sc.reserved = next
		return nil
	}
	if !sc.readBy(idx, true) {
		return nil
	}
	dir := filepath.Join(b.workDir, "stages", strconv.Itoa(idx))
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := moveAside(b.root, dir, b.ignore); err != nil {
		return fmt.Errorf("saving stage %d's files: %w", idx, err)
	}
	b.saved[idx] = dir
	b.rootHolds = -1
	return nil
}

// discard removes the side root of a stage that no later stage reads, in the background.
func (sc *scheduler) discard(out stageOutcome) {
	if out.kind != inSide {
		return
	}
	sc.removals.Add(1)
	go func() {
		defer sc.removals.Done()
		os.RemoveAll(out.dir)
	}()
}

// readBy reports whether a stage not started yet reads stage i's files: by COPY --from or a
// mount, or with base also by building on it.
func (sc *scheduler) readBy(i int, base bool) bool {
	for _, j := range sc.plan {
		if !sc.started[j] && (sc.deps[j].from[i] || (base && sc.deps[j].base == i)) {
			return true
		}
	}
	return false
}

func (sc *scheduler) firstUnstarted() int {
	for _, j := range sc.plan {
		if !sc.started[j] {
			return j
		}
	}
	return -1
}

// depsStarted reports whether everything stage j reads is started or done, so keeping the
// root for j cannot wait on a stage that itself waits for the root.
func (sc *scheduler) depsStarted(j int) bool {
	d := sc.deps[j]
	if d.base >= 0 && !sc.started[d.base] {
		return false
	}
	for i := range d.from {
		if !sc.started[i] {
			return false
		}
	}
	return true
}

func (sc *scheduler) unstarted() []int {
	var out []int
	for _, j := range sc.plan {
		if !sc.done[j] {
			out = append(out, j)
		}
	}
	return out
}

// runningLabels names the stages running now (but j).
func (sc *scheduler) runningLabels(j int) string {
	var names []string
	for _, k := range sc.plan {
		if _, ok := sc.running[k]; ok && k != j {
			names = append(names, "stage "+stageLabel(sc.b.df.Stages[k].Name, k))
		}
	}
	if len(names) == 0 {
		return "the other stages"
	}
	return fmt.Sprint(names)
}

// stageError names the failing stage when stages may run at once.
func (sc *scheduler) stageError(idx int, err error) error {
	if !sc.parallel {
		return err
	}
	return fmt.Errorf("stage %s: %w", stageLabel(sc.b.df.Stages[idx].Name, idx), err)
}

// hasIndependentPair reports whether two stages of the plan could run at the same time:
// neither reads the other, directly or through others.
func (sc *scheduler) hasIndependentPair() bool {
	reach := map[int]map[int]bool{} // stage -> every stage it reads, transitively
	for _, j := range sc.plan {     // plan order: what j reads comes earlier
		r := map[int]bool{}
		d := sc.deps[j]
		add := func(i int) {
			r[i] = true
			for k := range reach[i] {
				r[k] = true
			}
		}
		if d.base >= 0 {
			add(d.base)
		}
		for i := range d.from {
			add(i)
		}
		reach[j] = r
	}
	for x, j := range sc.plan {
		for _, k := range sc.plan[x+1:] {
			if !reach[k][j] && !reach[j][k] {
				return true
			}
		}
	}
	return false
}

// sideOK reports whether stage j may run in a side root, probing once per build what side
// roots can do here and saying why a stage must wait for the root instead.
func (sc *scheduler) sideOK(j int) bool {
	if sc.side == nil {
		sc.side = sc.b.probeSide()
	}
	if !sc.side.ok {
		return false
	}
	if !sc.side.chrootOnly {
		return true
	}
	line, ok := chrootable(sc.b.df.Stages[j].Commands)
	if !ok && !sc.side.refused[j] {
		sc.side.refused[j] = true
		name := sc.b.df.Stages[j].Name
		stageReporter{r: sc.b.o.reporter, stage: j, name: name}.Report(Event{Kind: EventNote, Time: time.Now(), Line: line,
			Message: fmt.Sprintf("stage %s waits for the root instead of running alongside others: its RUN at line %d needs a mount "+
				"or --network=none, which a side root in this pod (no CAP_SYS_ADMIN: RUN there is only chrooted) cannot give",
				stageLabel(name, j), line)})
	}
	return ok
}

// probeSide finds out how RUN works in side roots: as in directory mode (directory mode, or a
// pod that may create namespaces), chrooted only (a pod that may not), or not at all.
func (b *build) probeSide() *sideSupport {
	s := &sideSupport{refused: map[int]bool{}}
	if !b.o.podMode {
		s.ok = true
		return s
	}
	nsErr := runner.Supported()
	if nsErr == nil {
		s.ok = true
		return s
	}
	roots := filepath.Join(b.workDir, "roots")
	if err := os.MkdirAll(roots, 0o755); err != nil {
		b.warn("stages run one at a time: cannot create %s: %v", roots, err)
		return s
	}
	if err := runner.ChrootOnly(roots); err != nil {
		b.note(0, "stages run one at a time: this pod can neither create namespaces (%v) nor chroot into %s (%v)", nsErr, roots, err)
		return s
	}
	s.ok, s.chrootOnly = true, true
	b.note(0, "stages running alongside the root's run their RUN chrooted into their own root only, without /proc and /sys: "+
		"this pod cannot create namespaces (%v)", nsErr)
	return s
}

// chrootable reports whether every RUN of a stage can run chrooted only: none needs a mount
// or a network namespace. Otherwise it returns the line of the first that does.
func chrootable(cmds []instructions.Command) (int, bool) {
	for _, c := range cmds {
		r, ok := c.(*instructions.RunCommand)
		if !ok {
			continue
		}
		if len(instructions.GetMounts(r)) > 0 || instructions.GetNetwork(r) == instructions.NetworkNone {
			return lineOf(r), false
		}
	}
	return 0, true
}

// externalFroms lists the --from references of stage j that are not stages (images, named
// contexts): two stages reading the same one must not unpack it at the same time.
func (b *build) externalFroms(j int) []string {
	var out []string
	for _, c := range b.df.Stages[j].Commands {
		for _, from := range dockerfile.ReadsFrom(c) {
			if _, isStage := b.stageIndex(from, j); !isStage {
				out = append(out, from)
			}
		}
	}
	return out
}

// freshDir makes dir an empty directory whose trees are spread like the root's (dirspread).
func freshDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	dirspread.Children(dir)
	return nil
}
