package timings

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/builder"
)

// clock hands out times a millisecond apart, so tests control every span's position.
type clock struct{ t time.Time }

func (c *clock) next(d time.Duration) time.Time { c.t = c.t.Add(d); return c.t }

// feedStage reports one stage of two steps the way the builder does: a pull and an unpack at
// the start, then a RUN that executes and snapshots (with its layer's write) and a cached COPY.
func feedStage(r builder.Reporter, c *clock, idx int, name, from string) {
	ev := func(e builder.Event) { e.Stage = idx; r.Report(e) }
	stageStart := c.next(time.Millisecond)
	ev(builder.Event{Kind: builder.EventStageStart, Time: stageStart, StageName: name, Instruction: "FROM " + from, Line: 1})
	pullEnd := c.next(3 * time.Millisecond)
	// The pull event names no stage, as the builder reports it.
	r.Report(builder.Event{Kind: builder.EventPull, Time: pullEnd, Duration: 3 * time.Millisecond, Message: from + "@sha256:abcd"})
	ev(builder.Event{Kind: builder.EventExtract, Time: c.next(5 * time.Millisecond), Duration: 5 * time.Millisecond})

	stepStart := c.next(time.Millisecond)
	ev(builder.Event{Kind: builder.EventStep, Time: stepStart, StageName: name, Step: 1, Steps: 2, Instruction: "RUN make", Line: 2})
	ev(builder.Event{Kind: builder.EventCacheMiss, Time: c.next(0), Step: 1, Message: "cache miss for key 1234: no entry"})
	ev(builder.Event{Kind: builder.EventExecute, Time: c.next(10 * time.Millisecond), Step: 1, Duration: 10 * time.Millisecond})
	snapEnd := c.next(4 * time.Millisecond)
	ev(builder.Event{Kind: builder.EventSnapshot, Time: snapEnd, Duration: 4 * time.Millisecond, Message: "layer sha256:1"})
	ev(builder.Event{Kind: builder.EventCompress, Time: c.next(10 * time.Microsecond), Step: 1, Duration: 3 * time.Millisecond})
	stepEnd := c.next(time.Millisecond)
	ev(builder.Event{Kind: builder.EventStepDone, Time: stepEnd, Step: 1, Duration: stepEnd.Sub(stepStart)})

	step2 := c.next(time.Millisecond)
	ev(builder.Event{Kind: builder.EventStep, Time: step2, StageName: name, Step: 2, Steps: 2, Instruction: "COPY a /a", Line: 3})
	ev(builder.Event{Kind: builder.EventCacheHit, Time: c.next(0), Step: 2, Message: "cache hit for key 5678", CacheSource: "local"})
	step2End := c.next(time.Millisecond)
	ev(builder.Event{Kind: builder.EventStepDone, Time: step2End, Step: 2, Duration: step2End.Sub(step2)})
	stageEnd := c.next(time.Millisecond)
	ev(builder.Event{Kind: builder.EventStageDone, Time: stageEnd, Duration: stageEnd.Sub(stageStart)})
}

func find(t *testing.T, spans []Span, p Phase, stage, step int) Span {
	t.Helper()
	for _, s := range spans {
		if s.Phase == p && s.Stage == stage && s.Step == step {
			return s
		}
	}
	t.Fatalf("no %s span of stage %d step %d in %+v", p, stage, step, spans)
	return Span{}
}

func within(t *testing.T, inner, outer Span) {
	t.Helper()
	if inner.Start.Before(outer.Start) || inner.End().After(outer.End()) {
		t.Errorf("%s %q [%v, %v] is not inside %s %q [%v, %v]", inner.Phase, inner.Name, inner.Start, inner.End(),
			outer.Phase, outer.Name, outer.Start, outer.End())
	}
}

func TestRecorderNestsSpans(t *testing.T) {
	var forwarded []builder.EventKind
	r := New(builder.ReporterFunc(func(e builder.Event) { forwarded = append(forwarded, e.Kind) }))
	c := &clock{t: time.Now()}
	feedStage(r, c, 1, "builder", "golang:1")
	spans := r.Spans()

	stage := find(t, spans, Stage, 1, 0)
	if stage.Unfinished || stage.StageName != "builder" {
		t.Errorf("stage span %+v", stage)
	}
	pull := find(t, spans, Pull, 1, 0)
	unpack := find(t, spans, Unpack, 1, 0)
	step := find(t, spans, Step, 1, 1)
	exec := find(t, spans, Execute, 1, 1)
	snap := find(t, spans, Snapshot, 1, 1)
	comp := find(t, spans, Compress, 1, 1)
	for _, s := range []Span{pull, unpack, step} {
		within(t, s, stage)
	}
	within(t, exec, step)
	within(t, snap, step)
	within(t, comp, snap)
	if comp.End() != snap.End() || comp.Duration != 3*time.Millisecond {
		t.Errorf("compress [%v +%v] should end with its snapshot at %v and last 3ms", comp.Start, comp.Duration, snap.End())
	}
	if pull.Name != "pull golang:1@sha256:abcd" {
		t.Errorf("pull span named %q", pull.Name)
	}
	if step.Cache != "miss" || find(t, spans, Step, 1, 2).Cache != "hit" {
		t.Errorf("cache answers not on the steps: %+v", spans)
	}
	if len(forwarded) != 13 {
		t.Errorf("forwarded %d events, want all 13: %v", len(forwarded), forwarded)
	}
}

// TestRecorderConcurrentStages feeds stages from several goroutines at once, with Start spans
// and reads in between, as parallel stages and a push would (run with -race).
func TestRecorderConcurrentStages(t *testing.T) {
	r := New(nil)
	base := time.Now()
	var wg sync.WaitGroup
	const stages = 8
	for i := 0; i < stages; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			feedStage(r, &clock{t: base}, i, fmt.Sprintf("s%d", i), fmt.Sprintf("img%d", i))
			done := r.Start(Push, fmt.Sprintf("push %d", i))
			_ = r.Spans()
			done()
			done()
		}()
	}
	wg.Wait()
	spans := r.Spans()
	for i := 0; i < stages; i++ {
		stage := find(t, spans, Stage, i, 0)
		within(t, find(t, spans, Pull, i, 0), stage)
		within(t, find(t, spans, Execute, i, 1), find(t, spans, Step, i, 1))
	}
	pushes := 0
	for _, s := range spans {
		if s.Unfinished {
			t.Errorf("span left open: %+v", s)
		}
		if s.Phase == Push {
			pushes++
		}
	}
	if pushes != stages {
		t.Errorf("%d push spans, want %d", pushes, stages)
	}
}

func TestPullOfNoStageGoesToTheBuildTrack(t *testing.T) {
	r := New(nil)
	r.Report(builder.Event{Kind: builder.EventPull, Time: time.Now(), Duration: time.Millisecond, Message: "other@sha256:1"})
	if s := r.Spans(); len(s) != 1 || s[0].Stage != -1 || s[0].Phase != Pull {
		t.Errorf("spans %+v", s)
	}
}

func TestUnfinishedSpans(t *testing.T) {
	r := New(nil)
	c := &clock{t: time.Now().Add(-time.Second)}
	r.Report(builder.Event{Kind: builder.EventStageStart, Time: c.next(0), Stage: 0, Instruction: "FROM x"})
	r.Report(builder.Event{Kind: builder.EventStep, Time: c.next(time.Millisecond), Stage: 0, Step: 1, Instruction: "RUN false"})
	sum := r.Summary()
	if len(sum.Stages) != 1 || !sum.Stages[0].Unfinished || len(sum.Stages[0].Steps) != 1 || !sum.Stages[0].Steps[0].Unfinished {
		t.Fatalf("summary of a failed build: %+v", sum)
	}
}

func TestFromContext(t *testing.T) {
	if FromContext(context.Background()) != nil {
		t.Fatal("a bare context carries a Recorder")
	}
	FromContext(context.Background()).Start(Push, "nothing")() // a nil Recorder records nothing, safely
	r := New(nil)
	done := FromContext(NewContext(context.Background(), r)).Start(Output, "tarball")
	done()
	if s := r.Spans(); len(s) != 1 || s[0].Phase != Output || s[0].Stage != -1 {
		t.Errorf("spans %+v", s)
	}
}

// traceDoc is the trace file as a reader outside this package sees it.
type traceDoc struct {
	DisplayTimeUnit string `json:"displayTimeUnit"`
	TraceEvents     []map[string]any
	Timings         Summary `json:"timings"`
}

func TestWriteTraceShape(t *testing.T) {
	r := New(nil)
	c := &clock{t: time.Now()}
	feedStage(r, c, 0, "", "busybox")
	feedStage(r, c, 1, "app", "busybox")
	r.Report(builder.Event{Kind: builder.EventBuildDone, Time: c.next(time.Millisecond), Duration: c.t.Sub(r.origin)})
	r.Start(Push, "push reg/app:1")()
	var buf bytes.Buffer
	if err := r.WriteTrace(&buf); err != nil {
		t.Fatal(err)
	}
	if i, j := bytes.Index(buf.Bytes(), []byte(`"traceEvents"`)), bytes.Index(buf.Bytes(), []byte(`"timings"`)); i < 0 || j < i {
		t.Errorf("traceEvents must come before timings:\n%s", buf.String())
	}
	var doc traceDoc
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	names := map[string]bool{}
	tracks := map[float64]string{}
	for _, ev := range doc.TraceEvents {
		for _, k := range []string{"name", "ph", "ts", "pid", "tid"} {
			if _, ok := ev[k]; !ok {
				t.Errorf("event without %q: %v", k, ev)
			}
		}
		switch ev["ph"] {
		case "X":
			if d, ok := ev["dur"].(float64); !ok || d < 0 {
				t.Errorf("complete event without a dur >= 0: %v", ev)
			}
			names[ev["name"].(string)] = true
		case "M":
			if ev["name"] == "thread_name" {
				tracks[ev["tid"].(float64)] = ev["args"].(map[string]any)["name"].(string)
			}
		default:
			t.Errorf("unexpected phase %v", ev["ph"])
		}
	}
	for _, want := range []string{"stage 1 app: RUN make", "stage 0: COPY a /a", "stage 1 app: FROM busybox", "execute", "snapshot", "compress", "push reg/app:1", "build"} {
		if !names[want] {
			t.Errorf("no span named %q in %v", want, names)
		}
	}
	if tracks[1] != "build" || tracks[2] != "stage 0" || tracks[3] != "stage 1 app" {
		t.Errorf("tracks %v", tracks)
	}
	sum := doc.Timings
	if sum.Schema != SummarySchema || len(sum.Stages) != 2 || sum.TotalUS <= 0 {
		t.Fatalf("summary %+v", sum)
	}
	app := sum.Stages[1]
	if app.Name != "app" || app.From != "busybox" || len(app.Steps) != 2 || app.Steps[0].Cache != "miss" ||
		app.Steps[1].Cache != "hit" || app.Steps[1].CacheSource != "local" {
		t.Errorf("stage summary %+v", app)
	}
	if got := app.Steps[0].Phases[Execute]; got != 10000 {
		t.Errorf("RUN's execute = %dus, want 10000", got)
	}
	if got := app.Phases[Pull]; got != 3000 {
		t.Errorf("stage pull = %dus, want 3000", got)
	}
	if got := sum.Phases[Compress]; got != 6000 {
		t.Errorf("total compress = %dus, want 6000", got)
	}
	if len(sum.Build) != 2 {
		t.Errorf("build-level spans %+v, want the build and the push", sum.Build)
	}
}

func TestWriteBenchmarkIsKaniko(t *testing.T) {
	r := New(nil)
	c := &clock{t: time.Now()}
	feedStage(r, c, 0, "", "busybox")
	feedStage(r, c, 1, "", "busybox")
	r.Report(builder.Event{Kind: builder.EventBuildDone, Time: c.next(0), Duration: 50 * time.Millisecond})
	var buf bytes.Buffer
	if err := r.WriteBenchmark(&buf); err != nil {
		t.Fatal(err)
	}
	var m map[string]time.Duration // how Kaniko's own benchmark test reads the file
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	want := map[string]time.Duration{
		"Total Build Time":        50 * time.Millisecond,
		"Retrieving Source Image": 6 * time.Millisecond,
		"FS Unpacking":            10 * time.Millisecond,
		"Executing Instructions":  20 * time.Millisecond,
		"Taking Snapshots":        8 * time.Millisecond,
		"Compressing Layers":      6 * time.Millisecond,
		"Command: COPY a /a":      2 * time.Millisecond,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%q = %v, want %v (all: %v)", k, m[k], v, m)
		}
	}
	if m["Command: RUN make"] <= 0 {
		t.Errorf("no Command: RUN make in %v", m)
	}
}

// TestPullsOfStagesFromOneImage: two stages from one image start one after the other and
// pull at once; each pull lands on a stage that had started before it began.
func TestPullsOfStagesFromOneImage(t *testing.T) {
	r := New(nil)
	t0 := time.Now()
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	r.Report(builder.Event{Kind: builder.EventStageStart, Time: ms(0), Stage: 0, Instruction: "FROM img"})
	r.Report(builder.Event{Kind: builder.EventStageStart, Time: ms(5), Stage: 2, Instruction: "FROM img"})
	// Stage 2's pull (began at 6) ends first, then stage 0's (began at 1).
	r.Report(builder.Event{Kind: builder.EventPull, Time: ms(8), Duration: 2 * time.Millisecond, Message: "img@sha256:1"})
	r.Report(builder.Event{Kind: builder.EventPull, Time: ms(9), Duration: 8 * time.Millisecond, Message: "img@sha256:1"})
	r.Report(builder.Event{Kind: builder.EventStageDone, Time: ms(20), Stage: 0, Duration: 20 * time.Millisecond})
	r.Report(builder.Event{Kind: builder.EventStageDone, Time: ms(20), Stage: 2, Duration: 15 * time.Millisecond})
	spans := r.Spans()
	for _, stage := range []int{0, 2} {
		within(t, find(t, spans, Pull, stage, 0), find(t, spans, Stage, stage, 0))
	}
}
