package timings

import (
	"sort"
	"time"
)

// SummarySchema names the version of the plain summary's layout.
const SummarySchema = "kiln-timings/1"

// Summary is the plain form of a build's timings (the "timings" key of the trace file).
// Durations and offsets are in microseconds; offsets count from Started.
type Summary struct {
	Schema  string           `json:"schema"`
	Started time.Time        `json:"started"`
	TotalUS int64            `json:"total_us"`
	Phases  map[Phase]int64  `json:"phases_us"`
	Stages  []StageSummary   `json:"stages"`
	Build   []BuildSpanEntry `json:"build"`
}

// StageSummary is one stage: its span, its phases (its steps' included) and its steps.
type StageSummary struct {
	Stage      int             `json:"stage"`
	Name       string          `json:"name,omitempty"`
	From       string          `json:"from,omitempty"`
	StartUS    int64           `json:"start_us"`
	DurUS      int64           `json:"dur_us"`
	Phases     map[Phase]int64 `json:"phases_us"`
	Steps      []StepSummary   `json:"steps"`
	Unfinished bool            `json:"unfinished,omitempty"`
}

// StepSummary is one instruction of a stage.
type StepSummary struct {
	Step        int             `json:"step"`
	Instruction string          `json:"instruction"`
	Line        int             `json:"line,omitempty"`
	StartUS     int64           `json:"start_us"`
	DurUS       int64           `json:"dur_us"`
	Cache       string          `json:"cache,omitempty"`
	CacheSource string          `json:"cache_source,omitempty"`
	Phases      map[Phase]int64 `json:"phases_us"`
	Unfinished  bool            `json:"unfinished,omitempty"`
}

// BuildSpanEntry is a span of no stage: the build itself, a push, an output.
type BuildSpanEntry struct {
	Phase   Phase  `json:"phase"`
	Name    string `json:"name"`
	StartUS int64  `json:"start_us"`
	DurUS   int64  `json:"dur_us"`
}

// Summary returns the plain summary of the spans recorded so far.
func (r *Recorder) Summary() Summary {
	spans := r.Spans()
	return summarize(spans, r.originOf(spans))
}

func summarize(spans []Span, origin time.Time) Summary {
	sum := Summary{Schema: SummarySchema, Started: origin.UTC(), Phases: map[Phase]int64{},
		Stages: []StageSummary{}, Build: []BuildSpanEntry{}}
	b := summaryBuilder{origin: origin, stages: map[int]*StageSummary{}}
	var end time.Time
	for _, s := range spans {
		if s.End().After(end) {
			end = s.End()
		}
		if s.Stage < 0 && s.Phase != Stage && s.Phase != Step {
			sum.Build = append(sum.Build, BuildSpanEntry{Phase: s.Phase, Name: s.Name, StartUS: b.offset(s), DurUS: us(s.Duration)})
		}
		b.container(s)
	}
	steps := b.stepIndex()
	for _, s := range spans {
		if s.Phase == Build || s.Phase == Stage || s.Phase == Step {
			continue
		}
		sum.Phases[s.Phase] += us(s.Duration)
		if s.Stage < 0 {
			continue
		}
		b.stage(s).Phases[s.Phase] += us(s.Duration)
		if st := steps[[2]int{s.Stage, s.Step}]; st != nil && s.Step > 0 {
			st.Phases[s.Phase] += us(s.Duration)
		}
	}
	for _, st := range b.stages {
		sum.Stages = append(sum.Stages, *st)
	}
	sort.Slice(sum.Stages, func(i, j int) bool { return sum.Stages[i].StartUS < sum.Stages[j].StartUS })
	if !end.IsZero() {
		sum.TotalUS = us(end.Sub(origin))
	}
	return sum
}

// summaryBuilder collects the stages and steps of a summary.
type summaryBuilder struct {
	origin time.Time
	stages map[int]*StageSummary
}

func us(d time.Duration) int64 { return d.Microseconds() }

func (b *summaryBuilder) offset(s Span) int64 { return us(s.Start.Sub(b.origin)) }

// stage returns the summary of s's stage, making it when s is its first span.
func (b *summaryBuilder) stage(s Span) *StageSummary {
	st := b.stages[s.Stage]
	if st == nil {
		st = &StageSummary{Stage: s.Stage, Name: s.StageName, Phases: map[Phase]int64{}, Steps: []StepSummary{}}
		b.stages[s.Stage] = st
	}
	return st
}

// container fills in a stage from its stage span and adds a step from a step span.
func (b *summaryBuilder) container(s Span) {
	switch s.Phase {
	case Stage:
		st := b.stage(s)
		st.From, st.StartUS, st.DurUS, st.Unfinished = baseOf(s.Name), b.offset(s), us(s.Duration), s.Unfinished
	case Step:
		st := b.stage(s)
		st.Steps = append(st.Steps, StepSummary{Step: s.Step, Instruction: s.Name, Line: s.Line, StartUS: b.offset(s),
			DurUS: us(s.Duration), Cache: s.Cache, CacheSource: s.CacheSource, Phases: map[Phase]int64{},
			Unfinished: s.Unfinished})
	}
}

// stepIndex maps (stage, step) to the step's summary, once every step is in.
func (b *summaryBuilder) stepIndex() map[[2]int]*StepSummary {
	steps := map[[2]int]*StepSummary{}
	for _, st := range b.stages {
		for i := range st.Steps {
			steps[[2]int{st.Stage, st.Steps[i].Step}] = &st.Steps[i]
		}
	}
	return steps
}
