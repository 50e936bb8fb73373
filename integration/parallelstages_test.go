package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/internal/testenv"
	"github.com/kilnbuild/kiln/registry"
)

// parallelDockerfile has two independent stages, each printing when its RUN starts and ends
// (whole seconds: busybox's date has no %N) around a sleep, and a final stage copying from
// both. The timestamps stay in the log: the image's files are the same in every build.
const parallelDockerfile = `ARG BASE
FROM ${BASE} AS one
RUN echo "one-start $(date +%s)" && sleep 3 && echo one > /one.txt && echo "one-end $(date +%s)"
FROM ${BASE} AS two
WORKDIR /work
RUN echo "two-start $(date +%s)" && sleep 3 && echo two > two.txt && ls /dev/null > devnull.txt && echo "two-end $(date +%s)"
FROM ${BASE}
COPY --from=one /one.txt /out/one.txt
COPY --from=two /work/ /out/
RUN cat /out/one.txt /out/two.txt > /out/both.txt
`

// stageSpans are each stage's RUN start and end, as its output says (Unix seconds).
type stageSpans map[string][2]int64

var spanLine = regexp.MustCompile(`(?m)^(?:\[(\w+)\] )?(one|two)-(start|end) (\d+)$`)

// spansOf reads "[stage] one-start N" lines; prefixed says each line must name its stage.
func spansOf(t *testing.T, out string, prefixed bool) stageSpans {
	t.Helper()
	spans := stageSpans{}
	for _, m := range spanLine.FindAllStringSubmatch(out, -1) {
		if prefixed && m[1] != m[2] {
			t.Errorf("output line %q is not prefixed with its stage [%s]", m[0], m[2])
		}
		if !prefixed && m[1] != "" {
			t.Errorf("output line %q is prefixed in a sequential build", m[0])
		}
		n, _ := strconv.ParseInt(m[4], 10, 64)
		s := spans[m[2]]
		if m[3] == "start" {
			s[0] = n
		} else {
			s[1] = n
		}
		spans[m[2]] = s
	}
	for _, st := range []string{"one", "two"} {
		if s := spans[st]; s[0] == 0 || s[1] == 0 {
			t.Fatalf("no start and end of stage %s's RUN in the output:\n%s", st, out)
		}
	}
	return spans
}

// overlap reports whether the two stages' RUNs ran at the same time: each started before the
// other ended (a sequential build starts the second no earlier than the first ends).
func (s stageSpans) overlap() bool {
	return s["one"][0] < s["two"][1] && s["two"][0] < s["one"][1]
}

// libraryBuild builds parallelDockerfile in a directory root with n stages at once.
type libraryBuild struct {
	img    v1.Image
	err    error
	out    stageOutput
	mu     sync.Mutex
	events []builder.Event
	// before, if set, sees every event before it is recorded (and may hold the stage up).
	before func(builder.Event)
}

// stageOutput is RUN output written by stages at once; seen is closed once a line holding
// want was written.
type stageOutput struct {
	mu   sync.Mutex
	b    bytes.Buffer
	want string
	seen chan struct{}
}

func (l *stageOutput) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(p)
	if l.seen != nil && strings.Contains(l.b.String(), l.want) {
		close(l.seen)
		l.seen = nil
	}
	return len(p), nil
}

func (l *stageOutput) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func buildParallel(t *testing.T, df, base string, n int) *libraryBuild {
	return buildParallelWith(t, df, base, n, &libraryBuild{})
}

func buildParallelWith(t *testing.T, df, base string, n int, r *libraryBuild) *libraryBuild {
	t.Helper()
	root := filepath.Join(t.TempDir(), "rootfs")
	reporter := builder.ReporterFunc(func(e builder.Event) {
		if r.before != nil {
			r.before(e)
		}
		r.mu.Lock()
		r.events = append(r.events, e)
		r.mu.Unlock()
	})
	r.img, r.err = builder.Build(context.Background(), dockerfile.Source{Name: "Dockerfile", Data: []byte(df)},
		builder.WithDirectoryRoot(root),
		builder.WithWorkDir(filepath.Join(t.TempDir(), "work")),
		builder.WithContextDir(t.TempDir()),
		builder.WithBuildArgs(dockerfile.BuildArgs{"BASE": &base}),
		builder.WithPullOptions(registry.WithInsecureAll(true)),
		builder.WithReproducible(true),
		builder.WithReporter(reporter),
		builder.WithOutput(&r.out),
		builder.WithParallelStages(n))
	return r
}

// stageTimes are the stage-start and stage-done event times of the stage named name.
func (r *libraryBuild) stageTimes(t *testing.T, name string) (start, done time.Time) {
	t.Helper()
	for _, e := range r.events {
		if e.StageName != name {
			continue
		}
		switch e.Kind {
		case builder.EventStageStart:
			start = e.Time
		case builder.EventStageDone:
			done = e.Time
		}
	}
	if start.IsZero() || done.IsZero() {
		t.Fatalf("no stage-start and stage-done events for stage %s", name)
	}
	return start, done
}

// TestParallelStagesDirectory builds a Dockerfile with two independent stages in a directory
// root one stage at a time and two at a time: the images are the same (--reproducible), the
// two stages overlap only in the parallel build (by their events and by their RUNs' own
// clocks), the parallel build's RUN output lines name their stage, and every event of the
// two stages carries its stage.
func TestParallelStagesDirectory(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")

	seq := buildParallel(t, parallelDockerfile, base, 1)
	par := buildParallel(t, parallelDockerfile, base, 2)
	for name, r := range map[string]*libraryBuild{"sequential": seq, "parallel": par} {
		if r.err != nil {
			t.Fatalf("%s build: %v\n%s", name, r.err, r.out.String())
		}
	}
	dSeq, err := seq.img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	dPar, err := par.img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if dSeq != dPar {
		t.Errorf("digests differ: sequential %s, parallel %s", dSeq, dPar)
	}
	files := exportImage(t, par.img)
	for p, want := range map[string]string{"out/one.txt": "one\n", "out/two.txt": "two\n", "out/both.txt": "one\ntwo\n",
		"out/devnull.txt": "/dev/null\n"} {
		if files[p] != want {
			t.Errorf("/%s = %q, want %q", p, files[p], want)
		}
	}

	t.Logf("parallel build's RUN output:\n%s", par.out.String())
	if spansOf(t, seq.out.String(), false).overlap() {
		t.Errorf("sequential build: the stages' RUNs overlap:\n%s", seq.out.String())
	}
	if !spansOf(t, par.out.String(), true).overlap() {
		t.Errorf("parallel build: the stages' RUNs did not overlap:\n%s", par.out.String())
	}
	s1, d1 := par.stageTimes(t, "one")
	s2, d2 := par.stageTimes(t, "two")
	if !s1.Before(d2) || !s2.Before(d1) {
		t.Errorf("parallel build: stage events do not overlap: one %v..%v, two %v..%v", s1, d1, s2, d2)
	}
	s1, d1 = seq.stageTimes(t, "one")
	s2, _ = seq.stageTimes(t, "two")
	if s2.Before(d1) || s2.Before(s1) {
		t.Errorf("sequential build: stage two started at %v, before stage one ended at %v", s2, d1)
	}

	// Every event between a stage's start and end says whose it is.
	stageOf := map[string]int{"one": 0, "two": 1}
	sawNote := false
	for _, e := range par.events {
		if e.Kind == builder.EventStep && strings.HasPrefix(e.Instruction, "RUN echo") {
			name := strings.Fields(strings.TrimPrefix(e.Instruction, "RUN echo \""))[0]
			name = strings.TrimSuffix(name, "-start")
			if want, ok := stageOf[name]; !ok || e.Stage != want || e.StageName != name {
				t.Errorf("event %q carries stage %d %q", e.Instruction, e.Stage, e.StageName)
			}
		}
		if e.Kind == builder.EventNote && strings.Contains(e.Message, "in a root of its own") {
			sawNote = true
			if e.StageName != "two" {
				t.Errorf("side-root note %q is tagged with stage %q, want two", e.Message, e.StageName)
			}
		}
		if e.Kind == builder.EventPull && e.StageName == "" && e.Stage != 2 {
			t.Errorf("pull event %q carries no stage name", e.Message)
		}
	}
	if !sawNote {
		t.Errorf("no event says that stage two ran in a root of its own")
	}
}

// failingDockerfile has a slow stage and a stage that fails while the slow one runs.
const failingDockerfile = `ARG BASE
FROM ${BASE} AS slow
RUN echo slow-start && sleep 67 && echo slow > /slow.txt
FROM ${BASE} AS broken
RUN echo breaking && exit 3
FROM ${BASE}
COPY --from=slow /slow.txt /slow.txt
COPY --from=broken /bin/sh /sh
`

// TestParallelStagesFailureCancels: the stage that fails while another runs cancels it (the
// slow stage never finishes, and its RUN's process is gone), and Build returns the failing
// stage's error, naming the stage and its line, with the command's exit code.
func TestParallelStagesFailureCancels(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	// The broken stage fails only once the slow one's RUN printed its first line.
	slowRuns := make(chan struct{})
	r := &libraryBuild{out: stageOutput{want: "[slow] slow-start\n", seen: slowRuns}}
	r.before = func(e builder.Event) {
		if e.Kind == builder.EventStep && e.StageName == "broken" && strings.HasPrefix(e.Instruction, "RUN") {
			select {
			case <-slowRuns:
			case <-time.After(2 * time.Minute):
				t.Errorf("the slow stage's RUN never printed its first line")
			}
		}
	}
	buildParallelWith(t, failingDockerfile, base, 2, r)
	if r.err == nil {
		t.Fatal("the build succeeded")
	}
	msg := r.err.Error()
	for _, want := range []string{"stage broken", "Dockerfile:5", "non-zero code: 3"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	var runErr *builder.RunError
	if !errors.As(r.err, &runErr) || runErr.Code != 3 {
		t.Errorf("error %v: want a RunError with code 3", r.err)
	}
	if strings.Contains(msg, "context canceled") {
		t.Errorf("the error is the cancelled stage's, not the failing one's: %v", r.err)
	}
	startedSlow := false
	for _, e := range r.events {
		if e.StageName != "slow" {
			continue
		}
		if e.Kind == builder.EventStep {
			startedSlow = true
		}
		if e.Kind == builder.EventStageDone || e.Kind == builder.EventStepDone {
			t.Errorf("the slow stage went on after the other failed: %s %q", e.Kind, e.Instruction)
		}
	}
	if !startedSlow {
		t.Errorf("the slow stage never started its RUN: nothing ran alongside the failing stage\n%s", r.out.String())
	}
	if !strings.Contains(r.out.String(), "[broken] breaking\n") || !strings.Contains(r.out.String(), "[slow] slow-start\n") {
		t.Errorf("output lines do not name their stages:\n%s", r.out.String())
	}
	if out, _ := osexec.Command("pgrep", "-f", "sleep 67").Output(); strings.TrimSpace(string(out)) != "" {
		t.Errorf("the cancelled stage's sleep still runs: pids %s", out)
	}
}

// TestPodParallelStages builds parallelDockerfile with the executor as a build pod without
// CAP_SYS_ADMIN (side roots chrooted only) one stage at a time and two at a time, and with
// CAP_SYS_ADMIN two at a time (side roots in namespaces): the same digest every time, the
// stages overlap only when parallel, and the log says how the side stage ran.
func TestPodParallelStages(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	ctx := writeContext(t, map[string]string{"Dockerfile": parallelDockerfile})
	run := func(name string, parallel int, dropCaps []string) (string, string) {
		res := testenv.RunPod(t, testenv.Pod{
			Executor: testenv.BuildExecutor(t),
			Context:  ctx,
			DropCaps: dropCaps,
			Args: []string{"--force", "--context", "dir:///workspace", "--log-format", "text", "--dockerfile", "Dockerfile",
				"--build-arg", "BASE=" + base, "--destination", reg.Ref("it/parallel:" + name), "--insecure", "--insecure-pull",
				"--reproducible", "--digest-file", "/workspace/digest-" + name, fmt.Sprintf("--max-parallel-stages=%d", parallel)},
		})
		if res.ExitCode != 0 {
			t.Fatalf("%s: executor exit code %d\nstdout:\n%s\nstderr:\n%s", name, res.ExitCode, res.Stdout, res.Stderr)
		}
		return readFile(t, filepath.Join(ctx, "digest-"+name)), res.Stdout + res.Stderr
	}
	noAdmin := []string{"sys_admin"}
	dSeq, logSeq := run("seq", 1, noAdmin)
	dPar, logPar := run("par", 2, noAdmin)
	dNS, logNS := run("ns", 2, nil)
	t.Logf("log of the parallel build without CAP_SYS_ADMIN:\n%s", logPar)
	done := regexp.MustCompile(`Build done in \S+`)
	t.Logf("sequential: %s; parallel, chrooted: %s; parallel, namespaces: %s",
		done.FindString(logSeq), done.FindString(logPar), done.FindString(logNS))
	if dSeq != dPar || dSeq != dNS {
		t.Errorf("digests differ: sequential %s, parallel chrooted %s, parallel in namespaces %s", dSeq, dPar, dNS)
	}
	if strings.Contains(logSeq, "[two] ") {
		t.Errorf("sequential build: lines are prefixed with their stage:\n%s", logSeq)
	}
	if spansOf(t, logSeq, false).overlap() {
		t.Errorf("sequential build: the stages overlap:\n%s", logSeq)
	}
	for name, log := range map[string]string{"chrooted": logPar, "namespaces": logNS} {
		if !spansOf(t, log, true).overlap() {
			t.Errorf("parallel build (%s): the stages did not overlap:\n%s", name, log)
		}
		// Stage two starts while stage one runs: the executor's own lines for it name it too.
		if !strings.Contains(log, `[two] [2/2] RUN echo "two-start`) {
			t.Errorf("parallel build (%s): stage two's step line does not name it:\n%s", name, log)
		}
		if !strings.Contains(log, "stage two runs alongside") {
			t.Errorf("parallel build (%s): the log does not say stage two ran alongside:\n%s", name, log)
		}
	}
	if !strings.Contains(logPar, "RUN chrooted only") || strings.Contains(logNS, "RUN chrooted only") {
		t.Errorf("the log does not say that side roots run chrooted exactly where the pod lacks CAP_SYS_ADMIN:\n--- without\n%s\n--- with\n%s", logPar, logNS)
	}
	fs := testenv.ExportImage(t, reg, reg.Ref("it/parallel:par"))
	if e := file(t, fs, "out/both.txt"); string(e.Content) != "one\ntwo\n" {
		t.Errorf("/out/both.txt = %q", e.Content)
	}
}

// mountWaitsDockerfile is parallelDockerfile with a tmpfs mount on stage two's RUN.
const mountWaitsDockerfile = `ARG BASE
FROM ${BASE} AS one
RUN echo "one-start $(date +%s)" && sleep 3 && echo one > /one.txt && echo "one-end $(date +%s)"
FROM ${BASE} AS two
RUN --mount=type=tmpfs,target=/scratch echo "two-start $(date +%s)" && sleep 3 && echo two > /two.txt && echo "two-end $(date +%s)"
FROM ${BASE}
COPY --from=one /one.txt /out/one.txt
COPY --from=two /two.txt /out/two.txt
`

// TestPodParallelStageWaitsForMount: in a pod without CAP_SYS_ADMIN a side root cannot give a
// RUN its mounts, so the stage whose RUN has one waits and runs in / after the other, and the
// log says why, naming the stage and line.
func TestPodParallelStageWaitsForMount(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	ctx := writeContext(t, map[string]string{"Dockerfile": mountWaitsDockerfile})
	res := testenv.RunPod(t, testenv.Pod{
		Executor: testenv.BuildExecutor(t),
		Context:  ctx,
		DropCaps: []string{"sys_admin"},
		Args: []string{"--force", "--context", "dir:///workspace", "--log-format", "text", "--dockerfile", "Dockerfile",
			"--build-arg", "BASE=" + base, "--destination", reg.Ref("it/parallel:mount"), "--insecure", "--insecure-pull"},
	})
	log := res.Stdout + res.Stderr
	if res.ExitCode != 0 {
		t.Fatalf("executor exit code %d\n%s", res.ExitCode, log)
	}
	if !strings.Contains(log, "stage two waits for the root instead of running alongside others: its RUN at line 5 needs a mount") {
		t.Errorf("the log does not say why stage two waits:\n%s", log)
	}
	if spansOf(t, log, true).overlap() {
		t.Errorf("stage two ran alongside stage one:\n%s", log)
	}
	fs := testenv.ExportImage(t, reg, reg.Ref("it/parallel:mount"))
	if e := file(t, fs, "out/two.txt"); string(e.Content) != "two\n" {
		t.Errorf("/out/two.txt = %q", e.Content)
	}
}
