package timings

import (
	"encoding/json"
	"io"
	"time"
)

// traceFile is the document WriteTrace writes. Field order matters: traceEvents comes before
// the summary, since some Perfetto versions stop reading at the first key they do not know.
type traceFile struct {
	DisplayTimeUnit string       `json:"displayTimeUnit"`
	TraceEvents     []traceEvent `json:"traceEvents"`
	Timings         Summary      `json:"timings"`
}

// traceEvent is one event of the Trace Event Format: a complete event ("X") or a metadata
// event ("M") naming a process or a track.
type traceEvent struct {
	Name string         `json:"name"`
	Cat  string         `json:"cat,omitempty"`
	Ph   string         `json:"ph"`
	Ts   float64        `json:"ts"`
	Dur  *float64       `json:"dur,omitempty"`
	Pid  int            `json:"pid"`
	Tid  int            `json:"tid"`
	Args map[string]any `json:"args,omitempty"`
}

// The process and the build's own track in the trace; stage N is track N+stageTrackBase.
const (
	tracePid       = 1
	buildTrack     = 1
	stageTrackBase = 2
)

// WriteTrace writes the spans recorded so far as a Chrome trace with the plain summary under
// "timings" (see the package documentation for both).
func (r *Recorder) WriteTrace(w io.Writer) error {
	spans := r.Spans()
	origin := r.originOf(spans)
	doc := traceFile{DisplayTimeUnit: "ms", TraceEvents: traceEvents(spans, origin), Timings: summarize(spans, origin)}
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(doc)
}

// originOf is ts 0: the Recorder's creation, or an earlier span's start.
func (r *Recorder) originOf(spans []Span) time.Time {
	origin := r.origin
	if len(spans) > 0 && spans[0].Start.Before(origin) {
		origin = spans[0].Start
	}
	return origin
}

// traceEvents turns spans into complete events, after metadata events naming the tracks.
func traceEvents(spans []Span, origin time.Time) []traceEvent {
	evs := []traceEvent{
		{Name: "process_name", Ph: "M", Pid: tracePid, Tid: buildTrack, Args: map[string]any{"name": "kiln build"}},
		{Name: "thread_name", Ph: "M", Pid: tracePid, Tid: buildTrack, Args: map[string]any{"name": "build"}},
		{Name: "thread_sort_index", Ph: "M", Pid: tracePid, Tid: buildTrack, Args: map[string]any{"sort_index": buildTrack}},
	}
	named := map[int]bool{}
	for _, s := range spans {
		if s.Stage < 0 || named[s.Stage] {
			continue
		}
		named[s.Stage] = true
		tid := s.Stage + stageTrackBase
		evs = append(evs,
			traceEvent{Name: "thread_name", Ph: "M", Pid: tracePid, Tid: tid, Args: map[string]any{"name": stageLabel(s.Stage, s.StageName)}},
			traceEvent{Name: "thread_sort_index", Ph: "M", Pid: tracePid, Tid: tid, Args: map[string]any{"sort_index": tid}})
	}
	for _, s := range spans {
		dur := micros(s.Duration)
		evs = append(evs, traceEvent{Name: traceName(s), Cat: string(s.Phase), Ph: "X", Ts: micros(s.Start.Sub(origin)),
			Dur: &dur, Pid: tracePid, Tid: trackOf(s), Args: traceArgs(s)})
	}
	return evs
}

func trackOf(s Span) int {
	if s.Stage < 0 {
		return buildTrack
	}
	return s.Stage + stageTrackBase
}

// traceName is what the timeline shows on a span: stages and steps carry their stage's label
// ("stage 1 builder: RUN make"), phases inside them their phase.
func traceName(s Span) string {
	if s.Phase == Stage || s.Phase == Step {
		return stageLabel(s.Stage, s.StageName) + ": " + s.Name
	}
	return s.Name
}

func traceArgs(s Span) map[string]any {
	args := map[string]any{}
	if s.Stage >= 0 {
		args["stage"] = s.Stage
	}
	if s.Step > 0 {
		args["step"] = s.Step
	}
	if s.Line > 0 {
		args["line"] = s.Line
	}
	if s.Cache != "" {
		args["cache"] = s.Cache
	}
	if s.CacheSource != "" {
		args["cache_source"] = s.CacheSource
	}
	if s.Detail != "" {
		args["detail"] = s.Detail
	}
	if s.Unfinished {
		args["unfinished"] = true
	}
	return args
}

// micros is d in microseconds, keeping nanoseconds as the fraction so nested spans stay nested.
func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
