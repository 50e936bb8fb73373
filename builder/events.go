package builder

import (
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// EventKind says what an Event reports.
type EventKind string

// The kinds of events a build reports, in the order they usually occur.
const (
	EventStageStart EventKind = "stage-start" // a stage begins (Stage, Message = its FROM)
	EventPull       EventKind = "pull"        // base image resolved (Message = reference@digest)
	EventExtract    EventKind = "extract"     // base image layers unpacked into the root (Duration)
	EventStep       EventKind = "step"        // an instruction starts (Instruction)
	EventStepDone   EventKind = "step-done"   // an instruction finished (Duration, Layer info)
	EventSnapshot   EventKind = "snapshot"    // a layer was written (Message: size and file count)
	EventExecute    EventKind = "execute"     // an instruction's own work ended: RUN's command, COPY/ADD's copy (Duration)
	EventCompress   EventKind = "compress"    // a snapshot's layer was written: tar, compression and digests, one pass (Duration)
	EventOutput     EventKind = "output"      // a line of RUN output (Message) when WithOutput is not set
	EventWarning    EventKind = "warning"     // something the user should know (Message)
	EventStageDone  EventKind = "stage-done"  // a stage finished (Duration)
	EventBuildDone  EventKind = "build-done"  // the whole build finished (Duration)
	EventCacheHit   EventKind = "cache-hit"   // a cached layer replaces the instruction (Message: key)
	EventCacheMiss  EventKind = "cache-miss"  // no usable cache entry (Message: key and why)
	EventProgress   EventKind = "progress"    // long work moving: a base layer pulled and unpacked (Done of Total layers), or a large snapshot's entries so far (Done)
	EventNote       EventKind = "note"        // a fact worth logging at info (Message): a parser directive noted, a Git source resolved
)

// Event is one thing a build reports. Fields that do not apply to a kind are zero.
type Event struct {
	Kind        EventKind
	Time        time.Time
	Stage       int    // index of the stage in the Dockerfile
	StageName   string // its AS name, if any
	Step        int    // 1-based index of the instruction within the stage
	Steps       int    // number of instructions in the stage
	Instruction string // the instruction as written (after expansion where it applies)
	Line        int    // line of the instruction in the Dockerfile
	Duration    time.Duration
	Message     string
	Done, Total int64
	// CacheSource says, on a cache-hit, where the entry was found: "local" (the --cache-dir
	// layer cache), "registry" (the cache repository) or "oci" (an oci: cache repository).
	CacheSource string
}

// Reporter receives a build's events. Implementations must be safe for concurrent use: stages
// and transfers may report from several goroutines.
type Reporter interface {
	Report(Event)
}

// ReporterFunc adapts a function to a Reporter.
type ReporterFunc func(Event)

// Report calls f(e).
func (f ReporterFunc) Report(e Event) { f(e) }

type discard struct{}

func (discard) Report(Event) {}

// reportPhase reports a phase of step n of s (EventExecute) that began at start and ends now.
func (b *build) reportPhase(kind EventKind, s *stageState, n, total int, text string, line int, start time.Time) {
	now := time.Now()
	b.o.reporter.Report(Event{Kind: kind, Time: now, Stage: s.index, StageName: s.name, Step: n, Steps: total,
		Instruction: text, Line: line, Duration: now.Sub(start)})
}

// reportCompress reports how long writing the layer a snapshot of step n just took
// (EventCompress), when the layer knows it (a snapshot.Layer does).
func (b *build) reportCompress(s *stageState, n, total int, text string, line int, l v1.Layer) {
	w, ok := l.(interface{ WriteDuration() time.Duration })
	if !ok || w.WriteDuration() <= 0 {
		return
	}
	b.o.reporter.Report(Event{Kind: EventCompress, Time: time.Now(), Stage: s.index, StageName: s.name, Step: n,
		Steps: total, Instruction: text, Line: line, Duration: w.WriteDuration()})
}
