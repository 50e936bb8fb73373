package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/kilnbuild/kiln/builder"
)

// eventPrinter writes one line per interesting build event. Reporters must be safe for
// concurrent use, hence the mutex.
type eventPrinter struct {
	mu sync.Mutex
	w  io.Writer
}

// Report implements builder.Reporter.
func (p *eventPrinter) Report(e builder.Event) {
	var line string
	switch e.Kind {
	case builder.EventStageStart:
		line = fmt.Sprintf("stage %d %s", e.Stage, e.Instruction)
	case builder.EventPull:
		line = fmt.Sprintf("pulled %s in %v", e.Message, e.Duration.Round(time.Millisecond))
	case builder.EventStep:
		line = fmt.Sprintf("[%d/%d] %s", e.Step, e.Steps, e.Instruction)
	case builder.EventWarning:
		line = "warning: " + e.Message
	case builder.EventBuildDone:
		line = fmt.Sprintf("built in %v", e.Duration.Round(time.Millisecond))
	default:
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.w, line)
}
