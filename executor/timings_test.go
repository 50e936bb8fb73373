package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/timings"
)

// TestRunWritesTimings runs a directory-mode build that pushes and writes a tarball, with
// --timings and BENCHMARK_FILE: the trace names every phase the run went through, and the
// benchmark file has Kaniko's shape. An unwritable --timings fails the run and names the flag.
func TestRunWritesTimings(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("directory-mode builds need root (ownership of unpacked files); not root here")
	}
	host, base := startRegistry(t)
	ctxDir, out := t.TempDir(), t.TempDir()
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": "FROM " + base + " AS base\nCOPY hello /hello\n", "hello": "hi\n"})
	run := func(timingsPath string, env map[string]string) (string, error) {
		c, err := ParseFlags([]string{"--context=dir://" + ctxDir, "--destination=" + host + "/app:1",
			"--oci-layout-path=" + out + "/layout", "--timings=" + timingsPath, "--kaniko-dir=" + filepath.Join(out, "kaniko")})
		if err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		l, _ := NewLogger(&logs, "text", "info", false)
		root := filepath.Join(t.TempDir(), "rootfs")
		_, err = Run(context.Background(), c, WithDirectoryRoot(root), WithWorkDir(root+".work"), WithLogger(l),
			WithDockerConfig(t.TempDir()), WithLookupEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
		return logs.String(), err
	}

	bench := filepath.Join(out, "bench.json")
	logs, err := run(filepath.Join(out, "trace.json"), map[string]string{"BENCHMARK_FILE": bench})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, logs)
	}
	var doc struct {
		TraceEvents []struct {
			Name, Cat, Ph string
			Tid           int
		} `json:"traceEvents"`
		Timings timings.Summary `json:"timings"`
	}
	if err := json.Unmarshal([]byte(readTestFile(t, filepath.Join(out, "trace.json"))), &doc); err != nil {
		t.Fatal(err)
	}
	cats := map[string]bool{}
	for _, ev := range doc.TraceEvents {
		cats[ev.Cat] = true
	}
	for _, want := range []string{"build", "stage", "step", "pull", "unpack", "execute", "snapshot", "compress", "push", "output"} {
		if !cats[want] {
			t.Errorf("no %s span in the trace: %+v", want, doc.TraceEvents)
		}
	}
	if len(doc.Timings.Stages) != 1 || doc.Timings.Stages[0].Name != "base" || len(doc.Timings.Stages[0].Steps) != 1 {
		t.Errorf("summary stages %+v", doc.Timings.Stages)
	}
	var m map[string]time.Duration
	if err := json.Unmarshal([]byte(readTestFile(t, bench)), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"Total Build Time", "Total Push Time", "Retrieving Source Image", "FS Unpacking", "Command: COPY hello /hello"} {
		if m[k] <= 0 {
			t.Errorf("benchmark file: %q = %v (all: %v)", k, m[k], m)
		}
	}
	if !strings.Contains(logs, "Benchmark file written at "+bench) {
		t.Errorf("no log of the benchmark file:\n%s", logs)
	}

	t.Run("unwritable --timings fails the run", func(t *testing.T) {
		missing := filepath.Join(out, "no-such-dir", "trace.json")
		_, err := run(missing, map[string]string{"BENCHMARK_FILE": "false"})
		if err == nil || !strings.Contains(err.Error(), "--timings "+missing) {
			t.Errorf("Run: %v, want an error naming --timings %s", err, missing)
		}
	})
}

func readTestFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
