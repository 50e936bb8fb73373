package integration

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/testenv"
)

const timingsDockerfile = `ARG BASE
FROM ${BASE} AS builder
RUN mkdir -p /out && echo built > /out/app && echo RAN-BUILD
FROM ${BASE}
COPY --from=builder /out/app /app
RUN cat /app > /copied
`

// traceEvent is a Chrome trace event as a reader of the file sees it.
type traceEvent struct {
	Name string         `json:"name"`
	Cat  string         `json:"cat"`
	Ph   string         `json:"ph"`
	Ts   *float64       `json:"ts"`
	Dur  *float64       `json:"dur"`
	Pid  *int           `json:"pid"`
	Tid  *int           `json:"tid"`
	Args map[string]any `json:"args"`
}

func (e traceEvent) end() float64 { return *e.Ts + *e.Dur }

// inside reports whether e lies within outer, to a nanosecond (ts and dur are microseconds).
func (e traceEvent) inside(outer traceEvent) bool {
	const slack = 0.001
	return *e.Ts >= *outer.Ts-slack && e.end() <= outer.end()+slack
}

// TestPodTimings builds a two-stage Dockerfile in a pod with --timings and BENCHMARK_FILE and
// pushes it: the trace file is a Chrome trace whose stages are separate tracks, each phase of
// the build has spans, every span of a stage lies inside the stage's span and a RUN's execute
// inside its step; the benchmark file is Kaniko's map of names to nanoseconds.
func TestPodTimings(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	ctx := writeContext(t, map[string]string{"Dockerfile": timingsDockerfile})
	p := registryPod(t, ctx, "--build-arg", "BASE="+base, "--destination", reg.Ref("it/timings:1"),
		"--insecure", "--insecure-pull", "--timings", "/workspace/trace.json")
	p.Env = []string{"BENCHMARK_FILE=/workspace/bench.json"}
	res := runPodWant(t, p, true)
	if !strings.Contains(res.Stdout, "RAN-BUILD") {
		t.Fatalf("the RUN did not run:\n%s", res.Stdout)
	}

	var doc struct {
		TraceEvents []traceEvent `json:"traceEvents"`
		Timings     struct {
			Schema string `json:"schema"`
			Stages []struct {
				Stage int
				Name  string
				Steps []struct{ Instruction string }
			}
		} `json:"timings"`
	}
	raw := readFile(t, filepath.Join(ctx, "trace.json"))
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatalf("the trace file is not JSON: %v\n%s", err, raw)
	}
	complete := checkTraceEvents(t, doc.TraceEvents)
	checkTraceNesting(t, complete)
	if doc.Timings.Schema != "kiln-timings/1" || len(doc.Timings.Stages) != 2 || doc.Timings.Stages[0].Name != "builder" ||
		len(doc.Timings.Stages[1].Steps) != 2 {
		t.Errorf("summary: %+v", doc.Timings)
	}

	var bench map[string]time.Duration // the shape Kaniko's own benchmark test reads
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(ctx, "bench.json"))), &bench); err != nil {
		t.Fatalf("BENCHMARK_FILE is not a map of durations: %v", err)
	}
	for _, k := range []string{"Total Build Time", "Total Push Time", "Retrieving Source Image", "FS Unpacking",
		"Command: RUN cat /app > /copied", "Taking Snapshots", "Compressing Layers"} {
		if bench[k] <= 0 {
			t.Errorf("BENCHMARK_FILE: %q = %v; all: %v", k, bench[k], bench)
		}
	}
	if bench["Total Build Time"] < bench["Command: RUN cat /app > /copied"] {
		t.Errorf("the build took less than one of its instructions: %v", bench)
	}

	t.Run("a failed build still writes where it stopped", func(t *testing.T) {
		ctx := writeContext(t, map[string]string{"Dockerfile": "ARG BASE\nFROM ${BASE}\nRUN exit 3\n"})
		res := runPodWant(t, registryPod(t, ctx, "--build-arg", "BASE="+base, "--no-push",
			"--insecure-pull", "--timings", "/workspace/trace.json"), false)
		var doc struct {
			TraceEvents []traceEvent `json:"traceEvents"`
		}
		if err := json.Unmarshal([]byte(readFile(t, filepath.Join(ctx, "trace.json"))), &doc); err != nil {
			t.Fatalf("no trace after a failed build (exit %d): %v\n%s", res.ExitCode, err, res.Stderr)
		}
		failed := false
		for _, e := range doc.TraceEvents {
			if e.Cat == "step" && strings.HasSuffix(e.Name, "RUN exit 3") && e.Args["unfinished"] == true {
				failed = true
			}
		}
		if !failed {
			t.Errorf("the failed RUN is not an unfinished step span: %+v", doc.TraceEvents)
		}
	})
}

// checkTraceEvents checks every event's fields and returns the complete ("X") events; every
// phase of the build must have at least one.
func checkTraceEvents(t *testing.T, evs []traceEvent) []traceEvent {
	t.Helper()
	var complete []traceEvent
	cats := map[string]int{}
	for _, e := range evs {
		if e.Name == "" || e.Ph == "" || e.Ts == nil || e.Pid == nil || e.Tid == nil {
			t.Errorf("event lacks name, ph, ts, pid or tid: %+v", e)
			continue
		}
		if e.Ph != "X" {
			continue
		}
		if e.Dur == nil || *e.Dur < 0 || *e.Ts < 0 {
			t.Errorf("complete event %q without ts >= 0 and dur >= 0", e.Name)
			continue
		}
		complete = append(complete, e)
		cats[e.Cat]++
	}
	for _, want := range []string{"build", "stage", "step", "pull", "unpack", "execute", "snapshot", "compress", "push"} {
		if cats[want] == 0 {
			t.Errorf("no %s span in the trace (spans per phase: %v)", want, cats)
		}
	}
	return complete
}

// checkTraceNesting checks that the two stages are two tracks, that every span of a stage's
// track lies inside the stage's span, and that each RUN's execute lies inside its step.
func checkTraceNesting(t *testing.T, evs []traceEvent) {
	t.Helper()
	stages := map[int]traceEvent{} // by track
	steps := map[[2]int]traceEvent{}
	for _, e := range evs {
		switch e.Cat {
		case "stage":
			stages[*e.Tid] = e
		case "step":
			steps[[2]int{*e.Tid, int(e.Args["step"].(float64))}] = e
		}
	}
	if len(stages) != 2 {
		t.Fatalf("%d stage tracks, want 2: %+v", len(stages), stages)
	}
	runs := 0
	for _, e := range evs {
		stage, ok := stages[*e.Tid]
		if !ok || e.Cat == "stage" {
			continue
		}
		if !e.inside(stage) {
			t.Errorf("%s span %q [%f, %f] is outside its stage %q [%f, %f]", e.Cat, e.Name, *e.Ts, e.end(), stage.Name, *stage.Ts, stage.end())
		}
		if e.Cat != "execute" {
			continue
		}
		step, ok := steps[[2]int{*e.Tid, int(e.Args["step"].(float64))}]
		if !ok {
			t.Errorf("execute span %+v has no step", e)
			continue
		}
		if !e.inside(step) {
			t.Errorf("execute [%f, %f] is outside its step %q [%f, %f]", *e.Ts, e.end(), step.Name, *step.Ts, step.end())
		}
		if strings.Contains(step.Name, ": RUN ") {
			runs++
		}
	}
	if runs != 2 {
		t.Errorf("%d RUN steps with an execute span, want 2", runs)
	}
	// Stage 0 is track 2 (track 1 is the build's own).
	if first := steps[[2]int{2, 1}]; !strings.HasPrefix(first.Name, "stage 0 builder: RUN mkdir") {
		t.Errorf("stage 0's first step is named %q, want \"stage 0 builder: RUN mkdir…\"", first.Name)
	}
}
