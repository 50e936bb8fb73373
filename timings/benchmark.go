package timings

import (
	"encoding/json"
	"io"
	"time"
)

// benchmarkNames are the names Kaniko's benchmark file gives the phases Kiln measures alike,
// and Kiln's own names for the rest. Push and Output add up to Kaniko's "Total Push Time",
// which covers the tarball and OCI layout too.
var benchmarkNames = map[Phase]string{
	Build:    "Total Build Time",
	Push:     "Total Push Time",
	Output:   "Total Push Time",
	Pull:     "Retrieving Source Image",
	Unpack:   "FS Unpacking",
	Execute:  "Executing Instructions",
	Snapshot: "Taking Snapshots",
	Compress: "Compressing Layers",
}

// Benchmark returns what Kaniko writes to BENCHMARK_FILE: each timing's name mapped to the
// total time spent in it. Every instruction is also there as "Command: " plus the instruction,
// as Kaniko names it; the same instruction in two stages adds up, as in Kaniko.
func (r *Recorder) Benchmark() map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, s := range r.Spans() {
		if s.Phase == Step {
			out["Command: "+s.Name] += s.Duration
			continue
		}
		if name, ok := benchmarkNames[s.Phase]; ok {
			out[name] += s.Duration
		}
	}
	return out
}

// WriteBenchmark writes Benchmark as JSON, durations in nanoseconds: the shape of Kaniko's
// BENCHMARK_FILE.
func (r *Recorder) WriteBenchmark(w io.Writer) error {
	return json.NewEncoder(w).Encode(r.Benchmark())
}
