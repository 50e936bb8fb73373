package executor

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kilnbuild/kiln/builder"
)

// Log is where Run writes its own messages (fetching the context, the cache, pushes). *Logger
// is one; so is any logger with these two methods. Debug messages go to a Log that also has
// Debugf(format string, args ...any), and are dropped otherwise.
type Log interface {
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
}

// Logger renders build events and the executor's own messages as Kaniko users know them:
// "INFO[0003] RUN make" lines (text, color) or one JSON object per line. It is safe for
// concurrent use and is a builder.Reporter.
type Logger struct {
	mu        sync.Mutex
	w         io.Writer
	format    string
	timestamp bool
	level     int
	start     time.Time
	tags      stageTags
}

var levels = map[string]int{"trace": 0, "debug": 1, "info": 2, "warn": 3, "warning": 3, "error": 4, "fatal": 5, "panic": 6}

// NewLogger returns a Logger writing to w in format ("text", "color" or "json"; --log-format),
// dropping messages below verbosity (trace, debug, info, warn, error, fatal, panic;
// --verbosity), with a timestamp on every line when timestamp is set (--log-timestamp) and the
// seconds since NewLogger otherwise, as Kaniko's logger does.
func NewLogger(w io.Writer, format, verbosity string, timestamp bool) (*Logger, error) {
	lvl, ok := levels[strings.ToLower(verbosity)]
	if !ok {
		return nil, fmt.Errorf("--verbosity=%s: must be one of trace, debug, info, warn, error, fatal, panic", verbosity)
	}
	return &Logger{w: w, format: format, timestamp: timestamp, level: lvl, start: time.Now()}, nil
}

func (l *Logger) log(level, msg string) {
	lvl := levels[level]
	if lvl < l.level {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	switch l.format {
	case "json":
		rec := map[string]string{"level": level, "msg": msg, "time": now.Format(time.RFC3339)}
		b, _ := json.Marshal(rec)
		fmt.Fprintf(l.w, "%s\n", b)
	default:
		tag := strings.ToUpper(level)
		if len(tag) > 4 {
			tag = tag[:4]
		}
		if l.format == "color" {
			tag = colorOf(level) + tag + "\x1b[0m"
		}
		if l.timestamp {
			fmt.Fprintf(l.w, "%s[%s] %s\n", tag, now.Format(time.RFC3339), msg)
		} else {
			fmt.Fprintf(l.w, "%s[%04d] %s\n", tag, int(now.Sub(l.start).Seconds()), msg)
		}
	}
}

func colorOf(level string) string {
	switch level {
	case "warn", "warning":
		return "\x1b[33m"
	case "error", "fatal", "panic":
		return "\x1b[31m"
	case "debug", "trace":
		return "\x1b[37m"
	}
	return "\x1b[36m"
}

// Infof logs at level info.
func (l *Logger) Infof(f string, a ...any) { l.log("info", fmt.Sprintf(f, a...)) }

// Warnf logs at level warn.
func (l *Logger) Warnf(f string, a ...any) { l.log("warn", fmt.Sprintf(f, a...)) }

// Errorf logs at level error.
func (l *Logger) Errorf(f string, a ...any) { l.log("error", fmt.Sprintf(f, a...)) }

// Debugf logs at level debug.
func (l *Logger) Debugf(f string, a ...any) { l.log("debug", fmt.Sprintf(f, a...)) }

// Report renders one build event (builder.Reporter).
func (l *Logger) Report(e builder.Event) { renderEvent(l.tags.tag(l, e), e) }

// ReportTo returns a builder.Reporter that renders build events onto l as a Logger renders
// them: one line per stage, step, cache hit or miss, pull, snapshot and warning.
func ReportTo(l Log) builder.Reporter {
	tags := &stageTags{}
	return builder.ReporterFunc(func(e builder.Event) { renderEvent(tags.tag(l, e), e) })
}

// stageTags prefixes a stage's log lines with its name ("[build] ") while another stage runs
// too (--max-parallel-stages), so interleaved lines say whose they are. A build whose stages
// run one after another logs as before.
type stageTags struct {
	mu   sync.Mutex
	open map[int]string // running stages, by index: their labels
}

// tag returns the Log to render e with: l itself, or l prefixing its lines with e's stage.
func (s *stageTags) tag(l Log, e builder.Event) Log {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open == nil {
		s.open = map[int]string{}
	}
	label := e.StageName
	if label == "" {
		label = strconv.Itoa(e.Stage)
	}
	switch e.Kind {
	case builder.EventStageStart:
		s.open[e.Stage] = label
	case builder.EventBuildDone:
		return l
	}
	_, running := s.open[e.Stage]
	parallel := running && len(s.open) > 1
	if e.Kind == builder.EventStageDone {
		delete(s.open, e.Stage)
	}
	if !parallel {
		return l
	}
	return stageLog{l: l, prefix: "[" + label + "] "}
}

// stageLog prefixes every line written to l.
type stageLog struct {
	l      Log
	prefix string
}

func (s stageLog) Infof(f string, a ...any)  { s.l.Infof("%s%s", s.prefix, fmt.Sprintf(f, a...)) }
func (s stageLog) Warnf(f string, a ...any)  { s.l.Warnf("%s%s", s.prefix, fmt.Sprintf(f, a...)) }
func (s stageLog) Debugf(f string, a ...any) { debugf(s.l, "%s%s", s.prefix, fmt.Sprintf(f, a...)) }

// renderEvent writes one build event as Kaniko users know it ("[2/5] RUN make").
func renderEvent(l Log, e builder.Event) {
	switch e.Kind {
	case builder.EventStageStart:
		name := ""
		if e.StageName != "" {
			name = " (" + e.StageName + ")"
		}
		l.Infof("Stage %d%s: %s", e.Stage, name, e.Instruction)
	case builder.EventPull:
		l.Infof("Resolved base image %s (%s)", e.Message, round(e.Duration))
	case builder.EventExtract:
		what := e.Message
		if what == "" {
			what = "base image unpacked into the root"
		}
		l.Infof("%s (%s)", capitalize(what), round(e.Duration))
	case builder.EventCacheHit, builder.EventCacheMiss:
		l.Infof("[%d/%d] %s", e.Step, e.Steps, e.Message)
	case builder.EventStep:
		l.Infof("[%d/%d] %s", e.Step, e.Steps, e.Instruction)
	case builder.EventStepDone:
		debugf(l, "[%d/%d] done in %s", e.Step, e.Steps, round(e.Duration))
		if e.Duration > 100*time.Millisecond {
			l.Infof("[%d/%d] took %s", e.Step, e.Steps, round(e.Duration))
		}
	case builder.EventSnapshot:
		l.Infof("Snapshot: %s (%s)", e.Message, round(e.Duration))
	case builder.EventWarning:
		l.Warnf("%s", e.Message)
	case builder.EventStageDone:
		l.Infof("Stage %d done in %s", e.Stage, round(e.Duration))
	case builder.EventBuildDone:
		l.Infof("Build done in %s", round(e.Duration))
	case builder.EventProgress:
		l.Infof("%s", e.Message)
	default:
		if e.Message != "" {
			l.Infof("%s", e.Message)
		}
	}
}

func round(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// debugf logs at debug level when log can, and drops the message otherwise.
func debugf(log Log, format string, args ...any) {
	if d, ok := log.(interface{ Debugf(string, ...any) }); ok {
		d.Debugf(format, args...)
	}
}
