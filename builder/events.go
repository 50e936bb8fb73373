package builder

import "time"

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
