// Package timings records where a build's time goes and writes it down: per stage and per
// instruction, the pull, unpack, execute, snapshot, compress and push phases, with their starts
// and durations.
//
// A Recorder is a builder.Reporter: put it in front of another reporter (it forwards every
// event) and it turns the builder's events into spans. Work outside the builder, such as the
// push, is timed with Recorder.Start. A Recorder is safe for concurrent use, and spans are kept
// apart per stage, so stages built at the same time show as separate tracks.
//
// # The trace file
//
// WriteTrace writes one JSON document that is both a Chrome trace and Kiln's own summary:
//
//	{
//	  "displayTimeUnit": "ms",
//	  "traceEvents": [ ... ],
//	  "timings": { ... }
//	}
//
// traceEvents are in the Trace Event Format's JSON object form, so the file opens in Perfetto
// (ui.perfetto.dev) or chrome://tracing as a timeline. Every span is a complete event ("ph":
// "X") with "ts" and "dur" in microseconds from the first recorded moment, "pid" 1, and a
// "tid" per track: tid 1 is the build as a whole (the build, the push, the outputs), tid N+2 is
// stage N of the Dockerfile; "M" metadata events name the tracks ("stage 1 builder"). On a
// stage's track the stage span holds its pull and unpack spans and its steps ("stage 1
// builder: RUN make"); a step holds its unpack (cached layers, or a base image unpacked only
// when the first instruction missed), execute and snapshot spans; a snapshot holds its
// compress span. "cat" is the phase; "args" carry the stage, the step, the Dockerfile line and
// the cache answer. The summary sits after traceEvents, under a key trace viewers skip.
//
// "timings" is the plain summary (schema "kiln-timings/1"), all durations in microseconds:
//
//	schema       "kiln-timings/1"
//	started      RFC 3339 time of the first recorded moment (ts 0 of the trace)
//	total_us     from the first recorded moment to the end of the last span
//	phases_us    {phase: total} over the whole build: pull, unpack, execute, snapshot,
//	             compress, push, output
//	stages       [{stage, name, from, start_us, dur_us, phases_us, steps, unfinished}]
//	  steps      [{step, instruction, line, start_us, dur_us, cache, cache_source, phases_us,
//	             unfinished}]
//	build        [{phase, name, start_us, dur_us}]: spans of no stage (the build, push, outputs)
//
// A stage's phases_us sum its own spans and its steps'. Compression happens while the layer
// is written, in the same pass as the tar stream, so "snapshot" (finding what changed and
// writing the layer) includes "compress" (writing the layer). "cache" is "hit", "miss" or ""
// (not looked up); a hit's "cache_source" is "local" (--cache-dir), "registry" or "oci". A
// span still open when the file is written (the build failed) is closed at that moment and
// marked unfinished.
//
// # Kaniko's benchmark file
//
// WriteBenchmark writes what Kaniko writes to its BENCHMARK_FILE: one JSON object mapping a
// timing's name to its duration in nanoseconds, with Kaniko's names where Kiln measures the
// same thing ("Total Build Time", "Total Push Time", "Retrieving Source Image", "FS
// Unpacking", "Command: RUN make") and Kiln's own for the rest ("Executing Instructions",
// "Taking Snapshots", "Compressing Layers").
package timings
