package builder

import (
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// Build arg values never enter the history: a RUN is recorded without BuildKit's "|N K=V"
// prefix, an ARG with its Dockerfile default only.
func TestHistoryKeepsBuildArgValuesOut(t *testing.T) {
	if got := runHistory([]string{"/bin/sh", "-c", `curl -H "$TOKEN" x`}); got != `RUN /bin/sh -c curl -H "$TOKEN" x # buildkit` {
		t.Errorf("runHistory = %q", got)
	}
	def := "1.0"
	arg := &instructions.ArgCommand{Args: []instructions.KeyValuePairOptional{{Key: "TOKEN"}, {Key: "VERSION", Value: &def}}}
	if got := argHistory(arg); got != "TOKEN VERSION=1.0" {
		t.Errorf("argHistory = %q", got)
	}
}

func TestRunErrorNamesTheSignal(t *testing.T) {
	for code, want := range map[int]string{
		1:   "the command returned a non-zero code: 1",
		137: "the command returned a non-zero code: 137 (killed by SIGKILL: out of memory",
		139: "(killed by SIGSEGV: the command crashed)",
		143: "(killed by SIGTERM)",
		255: "the command returned a non-zero code: 255",
	} {
		if got := (&RunError{Code: code}).Error(); !strings.Contains(got, want) {
			t.Errorf("code %d: %q, want it to contain %q", code, got, want)
		}
	}
}
