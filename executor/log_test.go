package executor

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/builder"
)

func TestLoggerRendersEventsAsKaniko(t *testing.T) {
	var buf bytes.Buffer
	l, err := NewLogger(&buf, "text", "info", false)
	if err != nil {
		t.Fatal(err)
	}
	var _ builder.Reporter = l
	l.Report(builder.Event{Kind: builder.EventStep, Step: 2, Steps: 3, Instruction: "RUN make"})
	l.Report(builder.Event{Kind: builder.EventCacheHit, Step: 2, Steps: 3, Message: "cache hit for key 1234"})
	l.Report(builder.Event{Kind: builder.EventStepDone, Step: 2, Steps: 3, Duration: 50 * time.Millisecond})
	l.Debugf("not shown at info")
	l.Warnf("careful")
	want := "INFO[0000] [2/3] RUN make\nINFO[0000] [2/3] cache hit for key 1234\nWARN[0000] careful\n"
	if buf.String() != want {
		t.Errorf("log =\n%q\nwant\n%q", buf.String(), want)
	}

	buf.Reset()
	l, _ = NewLogger(&buf, "json", "debug", true)
	l.Debugf("shown at %s", "debug")
	var rec map[string]string
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil || rec["level"] != "debug" || rec["msg"] != "shown at debug" {
		t.Errorf("json line %q: %v %v", buf.String(), rec, err)
	}
	if _, err := NewLogger(&buf, "text", "loud", false); err == nil || !strings.Contains(err.Error(), "--verbosity=loud") {
		t.Errorf("bad verbosity: %v", err)
	}
}
