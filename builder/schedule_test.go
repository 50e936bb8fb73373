package builder

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/kilnbuild/kiln/dockerfile"
)

// testScheduler parses df and returns a scheduler over all its stages (no probing: directory mode).
func testScheduler(t *testing.T, df string, limit int) *scheduler {
	t.Helper()
	d, err := dockerfile.Parse(dockerfile.Source{Name: "Dockerfile", Data: []byte(df)})
	if err != nil {
		t.Fatal(err)
	}
	b := &build{o: options{parallelStages: limit}, df: d, saved: map[int]string{}, results: map[int]*stageResult{}}
	b.meta, err = d.Meta(nil, dockerfile.DefaultPlatform(), dockerfile.DefaultPlatform())
	if err != nil {
		t.Fatal(err)
	}
	var plan []int
	for i := range d.Stages {
		plan = append(plan, i)
	}
	return newScheduler(b, plan)
}

// TestSchedulerOrder walks the scheduler's choices by hand: which stage takes the root,
// which run alongside, and that one stage at a time keeps the Dockerfile's order.
func TestSchedulerOrder(t *testing.T) {
	const df = `FROM busybox AS a
RUN true
FROM busybox AS b
RUN true
FROM a AS c
COPY --from=b /x /x
FROM busybox
COPY --from=c /x /y
COPY --from=a /x /z
`
	sc := testScheduler(t, df, 2)
	if !sc.parallel {
		t.Fatal("a and b are independent, yet the plan is not parallel")
	}
	pick := func() string {
		j, kind, ok := sc.pick()
		if !ok {
			return "none"
		}
		sc.started[j], sc.running[j] = true, kind
		if kind == inRoot {
			sc.rootBusy = true
			if sc.reserved == j {
				sc.reserved = -1
			}
		}
		return fmt.Sprintf("%d/%v", j, kind)
	}
	finish := func(j int) {
		if sc.running[j] == inRoot {
			sc.rootBusy = false
			sc.b.rootHolds = j
		}
		delete(sc.running, j)
		sc.done[j] = true
	}
	// a takes the root, b runs alongside; c (FROM a, --from b) waits for both.
	if got := pick(); got != fmt.Sprintf("0/%v", inRoot) {
		t.Fatalf("first pick %s", got)
	}
	if got := pick(); got != fmt.Sprintf("1/%v", inSide) {
		t.Fatalf("second pick %s", got)
	}
	if got := pick(); got != "none" {
		t.Fatalf("third pick %s: the bound is 2", got)
	}
	finish(0)
	// c builds on a, whose files are in the root, and b is running: the root waits for c.
	if err := sc.after(stageOutcome{idx: 0, kind: inRoot}); err != nil {
		t.Fatal(err)
	}
	if sc.reserved != 2 {
		t.Fatalf("the root is kept for stage %d, want 2", sc.reserved)
	}
	if got := pick(); got != "none" {
		t.Fatalf("pick %s while c waits for b", got)
	}
	finish(1)
	if got := pick(); got != fmt.Sprintf("2/%v", inRoot) {
		t.Fatalf("pick %s, want c in the root", got)
	}
	finish(2)
	if got := pick(); got != fmt.Sprintf("3/%v", inRoot) {
		t.Fatalf("pick %s, want the target in the root", got)
	}

	seq := testScheduler(t, df, 1)
	var order []int
	for range 4 {
		j, kind, ok := seq.pick()
		if !ok || kind != inRoot {
			t.Fatalf("sequential pick %d %v %v", j, kind, ok)
		}
		order = append(order, j)
		seq.started[j], seq.done[j] = true, true
	}
	if fmt.Sprint(order) != "[0 1 2 3]" {
		t.Errorf("sequential order %v", order)
	}
}

// TestSchedulerConflicts: stages reading the same image, or the same stage's files not yet
// saved anywhere, never run at once (both would unpack it into the same directory).
func TestSchedulerConflicts(t *testing.T) {
	const df = `FROM busybox AS base
RUN true
FROM busybox AS x
COPY --from=alpine /etc/os-release /a
FROM busybox AS y
COPY --from=alpine /etc/os-release /b
FROM busybox AS z
COPY --from=base /etc/passwd /c
FROM busybox AS w
COPY --from=base /etc/passwd /d
FROM busybox
COPY --from=x /a /a
COPY --from=y /b /b
COPY --from=z /c /c
COPY --from=w /d /d
`
	sc := testScheduler(t, df, 8)
	sc.done[0] = true
	sc.running[1] = inSide
	if sc.ready(2) {
		t.Error("y may start while x unpacks the same image")
	}
	sc.running[3] = inSide
	if sc.ready(4) {
		t.Error("w may start while z unpacks stage base's files")
	}
	sc.b.saved[0] = "/saved/base"
	if !sc.ready(4) {
		t.Error("w may not start though base's files are saved")
	}
	if testScheduler(t, "FROM busybox AS a\nRUN true\nFROM a\nRUN true\n", 4).parallel {
		t.Error("a chain of stages is called parallel")
	}
}

// TestPrefixWriter: lines written by two stages at once arrive whole, each with its stage's
// prefix; a last line without a newline comes out on flush.
func TestPrefixWriter(t *testing.T) {
	var out bytes.Buffer
	mu := &sync.Mutex{}
	a := &prefixWriter{w: &out, mu: mu, prefix: []byte("[a] ")}
	b := &prefixWriter{w: &out, mu: mu, prefix: []byte("[b] ")}
	var wg sync.WaitGroup
	for _, w := range []*prefixWriter{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				fmt.Fprintf(w, "line %d ", i)
				fmt.Fprintf(w, "of %s\n", w.prefix[1:2])
			}
			w.Write([]byte("tail"))
		}()
	}
	wg.Wait()
	a.flush()
	b.flush()
	counts := map[string]int{}
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		switch {
		case strings.HasPrefix(l, "[a] line ") && strings.HasSuffix(l, " of a"),
			strings.HasPrefix(l, "[b] line ") && strings.HasSuffix(l, " of b"):
			counts[l[:3]]++
		case l == "[a] tail" || l == "[b] tail":
			counts[l]++
		default:
			t.Fatalf("mixed or unprefixed line %q", l)
		}
	}
	if counts["[a]"] != 200 || counts["[b]"] != 200 || counts["[a] tail"] != 1 || counts["[b] tail"] != 1 {
		t.Errorf("line counts %v", counts)
	}
}
