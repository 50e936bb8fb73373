package builder

import (
	"strings"
	"testing"
)

// TestOutputEventsLines checks that RUN output becomes one EventOutput per line, split across
// writes, carrying the step's fields, with over-long lines cut and a last partial line flushed.
func TestOutputEventsLines(t *testing.T) {
	var got []Event
	w := newOutputEvents(ReporterFunc(func(e Event) { got = append(got, e) }),
		Event{Stage: 1, StageName: "build", Instruction: "RUN make", Line: 7})
	for _, chunk := range []string{"first\nsec", "ond\r\n", strings.Repeat("x", maxOutputLine+10), "\ntail"} {
		if n, err := w.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	w.flush()
	want := []string{"first", "second", strings.Repeat("x", maxOutputLine+10), "tail"}
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d", len(got), len(want))
	}
	for i, e := range got {
		if e.Message != want[i] {
			t.Errorf("event %d: message of %d bytes %.20q, want %.20q", i, len(e.Message), e.Message, want[i])
		}
		if e.Kind != EventOutput || e.Stage != 1 || e.StageName != "build" || e.Instruction != "RUN make" || e.Line != 7 || e.Time.IsZero() {
			t.Errorf("event %d: %+v", i, e)
		}
	}
}
