package executor

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/builder"
)

// TestLogTagsParallelStages: while two stages run at once, each line of theirs names its
// stage; before the second starts and after the first ends, lines are as in a sequential build.
func TestLogTagsParallelStages(t *testing.T) {
	var buf bytes.Buffer
	l, err := NewLogger(&buf, "text", "info", false)
	if err != nil {
		t.Fatal(err)
	}
	step := func(stage int, name, ins string) builder.Event {
		return builder.Event{Kind: builder.EventStep, Stage: stage, StageName: name, Step: 1, Steps: 1, Instruction: ins}
	}
	for _, e := range []builder.Event{
		{Kind: builder.EventStageStart, Stage: 0, StageName: "one", Instruction: "FROM busybox"},
		step(0, "one", "RUN a"),
		{Kind: builder.EventStageStart, Stage: 1, Instruction: "FROM busybox"},
		step(1, "", "RUN b"),
		{Kind: builder.EventWarning, Stage: 0, StageName: "one", Message: "careful"},
		{Kind: builder.EventStageDone, Stage: 0, StageName: "one"},
		step(1, "", "RUN c"),
		{Kind: builder.EventStageDone, Stage: 1},
		{Kind: builder.EventBuildDone},
	} {
		l.Report(e)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		_, msg, _ := strings.Cut(line, "] ")
		got = append(got, msg)
	}
	want := []string{
		"Stage 0 (one): FROM busybox",
		"[1/1] RUN a",
		"[1] Stage 1: FROM busybox",
		"[1] [1/1] RUN b",
		"[one] careful",
		"[one] Stage 0 done in 0s",
		"[1/1] RUN c",
		"Stage 1 done in 0s",
		"Build done in 0s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
