package timings

import (
	"strconv"
	"strings"

	"github.com/kilnbuild/kiln/builder"
)

// record turns one event into spans; r.mu is held. Events that end work carry their end time
// and duration; stage and step starts open spans that their done events close.
func (r *Recorder) record(e builder.Event) {
	switch e.Kind {
	case builder.EventStageStart:
		t := &track{from: baseOf(e.Instruction)}
		t.stage = r.addLocked(Span{Phase: Stage, Name: e.Instruction, Stage: e.Stage, StageName: e.StageName,
			Line: e.Line, Start: e.Time}, true)
		r.stages[e.Stage] = t
	case builder.EventStageDone:
		if t := r.stages[e.Stage]; t != nil && t.stage != nil {
			closeSpan(t.stage, e)
			t.stage, t.step = nil, nil
		}
	case builder.EventStep:
		t := r.track(e.Stage)
		t.step = r.addLocked(Span{Phase: Step, Name: e.Instruction, Stage: e.Stage, StageName: e.StageName,
			Step: e.Step, Line: e.Line, Start: e.Time}, true)
		t.snapshot = nil
	case builder.EventStepDone:
		if t := r.stages[e.Stage]; t != nil && t.step != nil && t.step.Step == e.Step {
			closeSpan(t.step, e)
			t.step, t.snapshot = nil, nil
		}
	case builder.EventCacheHit, builder.EventCacheMiss:
		if t := r.stages[e.Stage]; t != nil && t.step != nil && t.step.Step == e.Step {
			t.step.Cache = strings.TrimPrefix(string(e.Kind), "cache-")
			t.step.CacheSource, t.step.Detail = e.CacheSource, e.Message
		}
	case builder.EventPull:
		r.recordPull(e)
	case builder.EventExtract:
		name := e.Message
		if name == "" {
			name = "base image unpacked"
		}
		r.addPhase(Unpack, name, e)
	case builder.EventExecute:
		r.addPhase(Execute, "execute", e)
	case builder.EventSnapshot:
		s := r.addPhase(Snapshot, "snapshot", e)
		if t := r.stages[e.Stage]; t != nil && t.step != nil && s.Step == t.step.Step {
			t.snapshot = s
		}
	case builder.EventCompress:
		r.recordCompress(e)
	case builder.EventBuildDone:
		r.addLocked(Span{Phase: Build, Name: "build", Stage: -1, Start: e.Time.Add(-e.Duration), Duration: e.Duration}, false)
	}
}

// track returns the stage's track, making one for a stage whose start was not seen.
func (r *Recorder) track(stage int) *track {
	t := r.stages[stage]
	if t == nil {
		t = &track{}
		r.stages[stage] = t
	}
	return t
}

// closeSpan ends an open span with the duration its done event measured from the same start.
func closeSpan(s *span, e builder.Event) {
	s.Duration, s.open = e.Duration, false
	if s.Duration < 0 {
		s.Duration = 0
	}
}

// addPhase records work of e's stage that ended at e.Time, inside the stage's open step if
// there is one (the builder runs a stage's instructions one after another).
func (r *Recorder) addPhase(p Phase, name string, e builder.Event) *span {
	s := Span{Phase: p, Name: name, Stage: e.Stage, StageName: e.StageName, Step: e.Step, Line: e.Line,
		Start: e.Time.Add(-e.Duration), Duration: e.Duration, Detail: e.Message}
	if t := r.stages[e.Stage]; t != nil {
		if t.step != nil && (s.Step == 0 || s.Step == t.step.Step) {
			s.Step, s.Line = t.step.Step, t.step.Line
		}
		if t.stage != nil && s.StageName == "" {
			s.StageName = t.stage.StageName
		}
	}
	return r.addLocked(s, false)
}

// recordPull puts a base image's pull on the stage being started from that image. The pull
// event does not name its stage; its message is "reference@digest" with the reference the
// stage-start event's FROM gave. Of the stages starting from that image at once, it goes to
// the last one started before the pull began, so it always lies inside its stage's span. A
// pull no open stage claims goes on the build's track.
func (r *Recorder) recordPull(e builder.Event) {
	ref := e.Message
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	began := e.Time.Add(-e.Duration)
	best := -1
	for idx, t := range r.stages {
		if t.stage == nil || t.pulled || t.step != nil || t.from != ref || t.stage.Start.After(began) {
			continue
		}
		if best < 0 || t.stage.Start.After(r.stages[best].stage.Start) {
			best = idx
		}
	}
	if best < 0 {
		r.addLocked(Span{Phase: Pull, Name: "pull " + e.Message, Stage: -1, Start: e.Time.Add(-e.Duration),
			Duration: e.Duration}, false)
		return
	}
	t := r.stages[best]
	t.pulled = true
	e.Stage, e.StageName = best, t.stage.StageName
	r.addPhase(Pull, "pull "+e.Message, e)
}

// recordCompress places a layer's write at the end of the snapshot that wrote it: the
// builder measures how long the write took, and the write is the snapshot's last part.
func (r *Recorder) recordCompress(e builder.Event) {
	t := r.stages[e.Stage]
	if t == nil || t.snapshot == nil {
		r.addPhase(Compress, "compress", e)
		return
	}
	snap := t.snapshot
	d := e.Duration
	if d > snap.Duration {
		d = snap.Duration
	}
	r.addLocked(Span{Phase: Compress, Name: "compress", Stage: snap.Stage, StageName: snap.StageName, Step: snap.Step,
		Line: snap.Line, Start: snap.End().Add(-d), Duration: d, Detail: snap.Detail}, false)
	t.snapshot = nil
}

func itoa(i int) string { return strconv.Itoa(i) }
