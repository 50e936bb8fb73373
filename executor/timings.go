package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kilnbuild/kiln/timings"
)

// envBenchmarkFile is Kaniko's variable naming a file for its timings JSON ("false" turns it
// off, as in Kaniko).
const envBenchmarkFile = "BENCHMARK_FILE"

// startTimings puts a timings.Recorder in front of the run's reporter when --timings or
// BENCHMARK_FILE asks for timings, and returns ctx carrying it (for the push and outputs). It
// returns a nil Recorder, and ctx unchanged, otherwise.
func startTimings(ctx context.Context, c *Config, o *runOptions) (context.Context, *timings.Recorder) {
	if c.Timings == "" && benchmarkFile(o) == "" {
		return ctx, nil
	}
	rec := timings.New(o.reporter)
	o.reporter = rec
	return timings.NewContext(ctx, rec), rec
}

// finishTimings writes --timings and BENCHMARK_FILE, also after a failed build (the spans
// then show where it stopped). A --timings file that cannot be written fails a run that
// otherwise succeeded; BENCHMARK_FILE only warns, as in Kaniko. It returns runErr otherwise.
func finishTimings(rec *timings.Recorder, c *Config, o *runOptions, runErr error) error {
	if rec == nil {
		return runErr
	}
	if c.Timings != "" {
		err := writeTimingsFile(c.Timings, rec.WriteTrace)
		switch {
		case err == nil:
			o.log.Infof("Timings written to %s (a Chrome trace: open it in https://ui.perfetto.dev)", c.Timings)
		case runErr == nil:
			return fmt.Errorf("--timings %s: %w", c.Timings, err)
		default:
			o.log.Warnf("--timings %s: %v", c.Timings, err)
		}
	}
	if path := benchmarkFile(o); path != "" {
		if strings.Contains(path, "://") {
			o.log.Warnf("%s=%s: only local files are supported; no benchmark file written", envBenchmarkFile, path)
		} else if err := writeTimingsFile(path, rec.WriteBenchmark); err != nil {
			o.log.Warnf("%s=%s: %v", envBenchmarkFile, path, err)
		} else {
			o.log.Infof("Benchmark file written at %s", path)
		}
	}
	return runErr
}

// benchmarkFile is BENCHMARK_FILE's value, "" when unset or "false".
func benchmarkFile(o *runOptions) string {
	if v := o.getenv(envBenchmarkFile); v != "false" {
		return v
	}
	return ""
}

// writeTimingsFile writes what write produces to path.
func writeTimingsFile(path string, write func(io.Writer) error) error {
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		return err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return pe.Err // the path is already in the caller's message
		}
		return err
	}
	return nil
}

// timed runs f as a span of the build's timings, when ctx carries a Recorder.
func timed(ctx context.Context, phase timings.Phase, name string, f func() error) error {
	defer timings.FromContext(ctx).Start(phase, name)()
	return f()
}
