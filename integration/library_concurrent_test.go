package integration

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
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

// concurrentDockerfile has two targets on a shared base stage; each writes its own marker
// and records what its root held while it ran, so a leak between builds shows in the image.
const concurrentDockerfile = `ARG BASE
FROM ${BASE} AS base
ARG FLAVOR
RUN echo "$FLAVOR" > /flavor && echo "hello from $FLAVOR"
FROM base AS a
RUN echo a-only > /a.txt && sleep 1 && ls / > /seen
COPY ctxfile /from-context
FROM base AS b
RUN echo b-only > /b.txt && sleep 1 && ls / > /seen
COPY ctxfile /from-context
`

// TestLibraryConcurrentBuilds runs two builder.Build calls at once in one process, each in its
// own directory root with its own context, build args, target and options. The RUN steps are
// made to overlap (each build's reporter waits for the other to reach its RUN), and each
// image and root must hold only its own build's files. Run with -race, it also proves the
// builder shares no mutable state between calls.
func TestLibraryConcurrentBuilds(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	src := dockerfile.Source{Name: "Dockerfile", Data: []byte(concurrentDockerfile)}

	type spec struct {
		target, flavor, ctxContent string
		opts                       []builder.Option
		toWriter                   bool // RUN output to a writer, else to the reporter
	}
	specs := []spec{
		{target: "a", flavor: "alpha", ctxContent: "context of a\n",
			opts: []builder.Option{builder.WithLabels(map[string]string{"variant": "a"})}},
		{target: "b", flavor: "beta", ctxContent: "context of b\n", toWriter: true,
			opts: []builder.Option{builder.WithLabels(map[string]string{"variant": "b"}), builder.WithReproducible(true)}},
	}

	// Both builds wait here when they reach their target's RUN, so the RUNs run at once.
	var arrived sync.WaitGroup
	arrived.Add(len(specs))
	bothThere := make(chan struct{})
	go func() { arrived.Wait(); close(bothThere) }()

	type result struct {
		img       v1.Image
		err       error
		root      string
		out       bytes.Buffer
		mu        sync.Mutex
		outEvents []string // EventOutput messages
		runStart  time.Time
		runFinish time.Time
	}
	results := make([]*result, len(specs))
	var wg sync.WaitGroup
	for i, sp := range specs {
		r := &result{root: filepath.Join(t.TempDir(), "rootfs")}
		results[i] = r
		ctxDir := writeContext(t, map[string]string{"ctxfile": sp.ctxContent})
		marker := "RUN echo " + sp.target + "-only"
		var once sync.Once // a build that fails before its RUN must not hold the other back
		arrive := func() { once.Do(arrived.Done) }
		reporter := builder.ReporterFunc(func(e builder.Event) {
			if e.Kind == builder.EventOutput {
				r.mu.Lock()
				r.outEvents = append(r.outEvents, e.Message)
				r.mu.Unlock()
			}
			if !strings.HasPrefix(e.Instruction, marker) {
				return
			}
			switch e.Kind {
			case builder.EventStep:
				arrive()
				select {
				case <-bothThere:
				case <-time.After(2 * time.Minute):
					t.Errorf("build %s: the other build never reached its RUN", sp.target)
				}
				r.runStart = time.Now()
			case builder.EventStepDone:
				r.runFinish = time.Now()
			}
		})
		flavor := sp.flavor
		opts := append([]builder.Option{
			builder.WithDirectoryRoot(r.root),
			builder.WithWorkDir(filepath.Join(t.TempDir(), "work")),
			builder.WithContextDir(ctxDir),
			builder.WithBuildArgs(dockerfile.BuildArgs{"BASE": &base, "FLAVOR": &flavor}),
			builder.WithTarget(sp.target),
			builder.WithPullOptions(registry.WithInsecureAll(true)),
			builder.WithReporter(reporter),
		}, sp.opts...)
		if sp.toWriter {
			opts = append(opts, builder.WithOutput(&r.out))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer arrive()
			r.img, r.err = builder.Build(context.Background(), src, opts...)
		}()
	}
	wg.Wait()

	for i, r := range results {
		if r.err != nil {
			t.Fatalf("build %s: %v\n%s", specs[i].target, r.err, r.out.String())
		}
	}
	a, b := results[0], results[1]
	if !a.runStart.Before(b.runFinish) || !b.runStart.Before(a.runFinish) {
		t.Errorf("RUN steps did not overlap: a %v..%v, b %v..%v", a.runStart, a.runFinish, b.runStart, b.runFinish)
	}

	for i, sp := range specs {
		other := specs[1-i].target
		files := exportImage(t, results[i].img)
		want := map[string]string{
			"flavor":           sp.flavor + "\n",
			sp.target + ".txt": sp.target + "-only\n",
			"from-context":     sp.ctxContent,
		}
		for p, content := range want {
			if got, ok := files[p]; !ok || got != content {
				t.Errorf("image %s: /%s = %q (present %v), want %q", sp.target, p, got, ok, content)
			}
		}
		if _, ok := files[other+".txt"]; ok {
			t.Errorf("image %s holds /%s.txt of the other build", sp.target, other)
		}
		if seen := files["seen"]; strings.Contains(seen, other+".txt") || !strings.Contains(seen, sp.target+".txt") {
			t.Errorf("image %s: its RUN saw the root %q", sp.target, seen)
		}
		// The directory roots hold each build's own final filesystem.
		root := results[i].root
		if _, err := os.Stat(filepath.Join(root, sp.target+".txt")); err != nil {
			t.Errorf("root of %s: %v", sp.target, err)
		}
		if _, err := os.Stat(filepath.Join(root, other+".txt")); err == nil {
			t.Errorf("root of %s holds /%s.txt", sp.target, other)
		}

		cfg, err := results[i].img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Config.Labels["variant"]; got != sp.target {
			t.Errorf("image %s: label variant=%q", sp.target, got)
		}
	}
	// RUN output went where each build asked: a's to its reporter, b's to its writer.
	hello := func(flavor string) string { return "hello from " + flavor }
	if strings.Join(a.outEvents, "|") != hello("alpha") || a.out.Len() != 0 {
		t.Errorf("a: output events %q, writer %q; want one event %q", a.outEvents, a.out.String(), hello("alpha"))
	}
	if len(b.outEvents) != 0 || b.out.String() != hello("beta")+"\n" {
		t.Errorf("b: output events %q, writer %q; want %q in the writer only", b.outEvents, b.out.String(), hello("beta"))
	}
	// Options stay with their build: only b is reproducible.
	cfgA, _ := a.img.ConfigFile()
	cfgB, _ := b.img.ConfigFile()
	if !cfgB.Created.Time.Equal(time.Unix(0, 0)) {
		t.Errorf("b (reproducible) created %v, want the epoch", cfgB.Created.Time)
	}
	if cfgA.Created.Time.Before(time.Now().Add(-time.Hour)) {
		t.Errorf("a (not reproducible) created %v: b's WithReproducible leaked into it", cfgA.Created.Time)
	}
}
