package builder

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/kilnbuild/kiln/internal/runner"
	"github.com/kilnbuild/kiln/internal/units"
	"github.com/kilnbuild/kiln/snapshot"
)

// newSnapshotter returns the snapshotter of a root: the build's options, layers written to
// the work directory, progress reported as events.
func (b *build) newSnapshotter(root string) *snapshot.Snapshotter {
	return snapshot.New(root,
		snapshot.WithIgnore(b.ignore.Ignored),
		snapshot.WithCompression(layerCompression(b.o.compression)),
		snapshot.WithReproducible(b.o.reproducible),
		snapshot.WithProgress(10000, func(entries int, bytes int64) {
			b.o.reporter.Report(Event{Kind: EventProgress, Time: time.Now(), Done: int64(entries),
				Message: fmt.Sprintf("snapshot: %d entries, %s of file content written so far", entries, units.Bytes(bytes))})
		}),
		snapshot.WithLayerDir(filepath.Join(b.workDir, "layers")))
}

// stageView is the build as one stage sees it while stages run at once: its own root and
// snapshotter, its own copies of the maps stages read and write (results, scopes, saved
// stage and image directories, used args), events tagged with the stage and RUN output lines
// prefixed with its name. The scheduler merges what the stage added back into b when it ends,
// so no map is ever touched by two goroutines.
func (b *build) stageView(idx int, root string, snap *snapshot.Snapshotter, rootHolds int, prefix bool) *build {
	v := *b
	v.root, v.snap, v.rootHolds = root, snap, rootHolds
	v.results = maps.Clone(b.results)
	v.scopes = maps.Clone(b.scopes)
	v.saved = maps.Clone(b.saved)
	v.images = maps.Clone(b.images)
	v.usedArgs = map[string]bool{}
	v.gitDirs = nil
	name := b.df.Stages[idx].Name
	v.o.reporter = stageReporter{r: b.o.reporter, stage: idx, name: name}
	if prefix && b.o.output != nil {
		v.o.output = &prefixWriter{w: b.o.output, mu: b.outMu, prefix: []byte("[" + stageLabel(name, idx) + "] ")}
	}
	return &v
}

// merge takes back what stage idx, run in view v, left for later stages.
func (b *build) merge(idx int, v *build) {
	if sc, ok := v.scopes[idx]; ok {
		b.scopes[idx] = sc
	}
	for k := range v.usedArgs {
		b.usedArgs[k] = true
	}
	for i, dir := range v.saved {
		if _, ok := b.saved[i]; !ok {
			b.saved[i] = dir
		}
	}
	for ref, dir := range v.images {
		if _, ok := b.images[ref]; !ok {
			b.images[ref] = dir
		}
	}
	if b.mountCache == nil {
		b.mountCache = v.mountCache
	}
}

// flushOutput writes out a last RUN output line without a newline, once the stage ended.
func (b *build) flushOutput() {
	if w, ok := b.o.output.(*prefixWriter); ok {
		w.flush()
	}
}

// stageLabel names a stage in logs and errors: its AS name, or its index.
func stageLabel(name string, idx int) string {
	if name != "" {
		return name
	}
	return strconv.Itoa(idx)
}

// runProcess runs a RUN's process in the view's root: chrooted only where the root is a side
// root of a pod that may not create namespaces, as runner.Run otherwise.
func (b *build) runProcess(ctx context.Context, spec runner.Spec) error {
	if b.chrootOnly {
		return runner.RunChrooted(ctx, spec)
	}
	if b.o.podMode && b.root != "/" && spec.Hostname == "" {
		// A side root in a pod gets its own uts namespace: keep the pod's name, which a RUN
		// in the pod's root sees.
		spec.Hostname, _ = os.Hostname()
	}
	return runner.Run(ctx, spec)
}

// stageReporter tags every event of a stage with it, so consumers keyed by stage (a timings
// recorder, a log naming stages) can tell stages running at once apart.
type stageReporter struct {
	r     Reporter
	stage int
	name  string
}

// Report sets the stage fields of e and passes it on.
func (s stageReporter) Report(e Event) {
	if e.Kind != EventBuildDone {
		e.Stage, e.StageName = s.stage, s.name
	}
	s.r.Report(e)
}

// prefixWriter writes each complete line given to it as one Write of prefix+line to w,
// serialised with the other stages' writers by mu, so lines of stages running at once never
// mix and each says whose it is. Lines are prefixed, not buffered per stage, so a long RUN's
// output stays live; partial lines wait for their newline (or maxOutputLine, or flush).
type prefixWriter struct {
	w       io.Writer
	mu      *sync.Mutex
	prefix  []byte
	partial []byte
	wmu     sync.Mutex // stdout and stderr may be copied by separate goroutines
}

// Write writes every complete line in p and keeps the rest for the next Write.
func (p *prefixWriter) Write(b []byte) (int, error) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.partial = append(p.partial, b...)
	var out []byte
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		out = append(append(out, p.prefix...), p.partial[:i+1]...)
		p.partial = p.partial[i+1:]
	}
	if len(p.partial) >= maxOutputLine {
		out = append(append(append(out, p.prefix...), p.partial...), '\n')
		p.partial = nil
	}
	p.partial = append([]byte(nil), p.partial...)
	if len(out) == 0 {
		return len(b), nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

// flush writes a last line that had no newline.
func (p *prefixWriter) flush() {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if len(p.partial) == 0 {
		return
	}
	out := append(append(append([]byte(nil), p.prefix...), p.partial...), '\n')
	p.partial = nil
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = p.w.Write(out)
}
