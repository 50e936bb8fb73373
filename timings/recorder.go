package timings

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kilnbuild/kiln/builder"
)

// Phase says what a span measured.
type Phase string

// The phases a Recorder knows. Build, Stage and Step are the containers; the others are work.
const (
	Build    Phase = "build"    // the builder's whole run
	Stage    Phase = "stage"    // one stage, FROM to its last instruction
	Step     Phase = "step"     // one instruction
	Pull     Phase = "pull"     // a base image resolved in its registry (manifest and config)
	Unpack   Phase = "unpack"   // layers unpacked into the root (their download overlaps it)
	Execute  Phase = "execute"  // an instruction's own work: RUN's command, COPY/ADD's copy
	Snapshot Phase = "snapshot" // what an instruction changed found and written as a layer
	Compress Phase = "compress" // a snapshot's layer written: tar, compression and digests
	Push     Phase = "push"     // the image pushed to its destinations
	Output   Phase = "output"   // the image written as a tarball or an OCI layout
)

// workPhases are the phases summed in summaries, in the order they are listed.
var workPhases = []Phase{Pull, Unpack, Execute, Snapshot, Compress, Push, Output}

// Span is one timed piece of work.
type Span struct {
	Phase     Phase
	Name      string // what it was: "RUN make", "pull busybox@sha256:…", "push reg/app:1"
	Stage     int    // index of the stage in the Dockerfile; -1 for the build as a whole
	StageName string // the stage's AS name, if any
	Step      int    // 1-based instruction within the stage; 0 for the stage itself
	Line      int    // Dockerfile line of the instruction or stage, if known
	Start     time.Time
	Duration  time.Duration
	Cache     string // a step's cache answer: "hit", "miss" or ""
	// CacheSource is where a hit's entry was found: "local", "registry" or "oci".
	CacheSource string
	Detail      string // the event's message, if any
	// Unfinished is set on a span that had not ended when it was read (the build failed);
	// its Duration runs to that moment.
	Unfinished bool
}

// End is when the span ended.
func (s Span) End() time.Time { return s.Start.Add(s.Duration) }

// Recorder turns a build's events into spans. Its zero value is not usable: call New.
type Recorder struct {
	next   builder.Reporter
	origin time.Time

	mu     sync.Mutex
	spans  []*span
	stages map[int]*track
}

// span is a Span being recorded.
type span struct {
	Span
	open bool
}

// track is what the Recorder knows of one stage while it runs.
type track struct {
	from     string // the image its FROM names, as the stage-start event gives it
	stage    *span  // the stage's span, nil once done
	step     *span  // the open step, if any
	snapshot *span  // the last snapshot of the open step
	pulled   bool
}

// New returns a Recorder that forwards every event to next (which may be nil).
func New(next builder.Reporter) *Recorder {
	return &Recorder{next: next, origin: time.Now(), stages: map[int]*track{}}
}

// Report records e and forwards it.
func (r *Recorder) Report(e builder.Event) {
	r.mu.Lock()
	r.record(e)
	r.mu.Unlock()
	if r.next != nil {
		r.next.Report(e)
	}
}

// Start opens a span of the build as a whole (no stage), such as a push, and returns the
// function that ends it. Calling that function again does nothing. On a nil Recorder it
// records nothing.
func (r *Recorder) Start(phase Phase, name string) (done func()) {
	if r == nil {
		return func() {}
	}
	s := r.add(Span{Phase: phase, Name: name, Stage: -1, Start: time.Now()}, true)
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			s.Duration, s.open = time.Since(s.Start), false
			r.mu.Unlock()
		})
	}
}

// Spans returns every span recorded so far, by start time. Spans still open are returned as
// unfinished, ending now.
func (r *Recorder) Spans() []Span {
	now := time.Now()
	r.mu.Lock()
	out := make([]Span, len(r.spans))
	for i, s := range r.spans {
		out[i] = s.Span
		if s.open {
			out[i].Duration, out[i].Unfinished = now.Sub(s.Start), true
		}
	}
	r.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

func (r *Recorder) add(s Span, open bool) *span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addLocked(s, open)
}

// addLocked appends a span; r.mu is held.
func (r *Recorder) addLocked(s Span, open bool) *span {
	if s.Duration < 0 {
		s.Duration = 0
	}
	sp := &span{Span: s, open: open}
	r.spans = append(r.spans, sp)
	return sp
}

type ctxKey struct{}

// NewContext returns ctx carrying r, for code that times its work with FromContext.
func NewContext(ctx context.Context, r *Recorder) context.Context {
	return context.WithValue(ctx, ctxKey{}, r)
}

// FromContext returns the Recorder ctx carries, or nil (whose Start records nothing).
func FromContext(ctx context.Context) *Recorder {
	r, _ := ctx.Value(ctxKey{}).(*Recorder)
	return r
}

// stageLabel names a stage as tracks and step spans show it: "stage 1 builder" or "stage 1".
func stageLabel(stage int, name string) string {
	label := "stage " + itoa(stage)
	if name != "" {
		label += " " + name
	}
	return label
}

// baseOf is the image a stage-start event's FROM names ("FROM busybox" -> "busybox").
func baseOf(instruction string) string {
	return strings.TrimSpace(strings.TrimPrefix(instruction, "FROM "))
}
