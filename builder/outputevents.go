package builder

import (
	"bytes"
	"sync"
	"time"
)

// maxOutputLine bounds how much of a line without a newline is held before it is reported, so
// a command printing no newlines cannot grow memory.
const maxOutputLine = 64 << 10

// outputEvents is where a RUN's output goes when the caller gave no WithOutput: each line
// becomes an EventOutput, so a library caller gets events, not prints on its stdout.
type outputEvents struct {
	mu      sync.Mutex // stdout and stderr may be copied by separate goroutines
	r       Reporter
	tmpl    Event // stage and instruction fields every line carries
	partial []byte
	cut     bool // the last report was a cut-off line: its newline ends no new line
}

func newOutputEvents(r Reporter, tmpl Event) *outputEvents {
	tmpl.Kind = EventOutput
	return &outputEvents{r: r, tmpl: tmpl}
}

// Write reports every complete line in p and keeps the rest for the next Write.
func (w *outputEvents) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		if i > 0 || !w.cut {
			w.report(w.partial[:i])
		}
		w.cut = false
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) >= maxOutputLine {
		w.report(w.partial)
		w.partial, w.cut = nil, true
	}
	// Reuse the buffer's space instead of letting it creep forward.
	w.partial = append([]byte(nil), w.partial...)
	return len(p), nil
}

// flush reports a last line that had no newline.
func (w *outputEvents) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.report(w.partial)
		w.partial = nil
	}
}

func (w *outputEvents) report(line []byte) {
	e := w.tmpl
	e.Time = time.Now()
	e.Message = string(bytes.TrimSuffix(line, []byte("\r")))
	w.r.Report(e)
}
