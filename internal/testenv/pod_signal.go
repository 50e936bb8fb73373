package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// PodSignal sends a signal to the executor (pid 1 of the pod) once its
// output shows it reached a point, e.g. a RUN that echoes a word and sleeps.
// Waiting for output rather than a fixed time keeps the test independent of
// how fast the pull and unpack were.
type PodSignal struct {
	// Signal is sent to the executor; SIGTERM if zero (what the kubelet sends).
	Signal syscall.Signal
	// After is a string that must appear on the executor's stdout or stderr
	// before the signal is sent.
	After string
}

// errNotStarted means the pod's pid is not known yet.
var errNotStarted = errors.New("pod not started yet")

// signalWatch collects one output stream and fires the signal when the
// combined output of the streams first contains the watched string.
type signalWatch struct {
	spec PodSignal
	mu   sync.Mutex
	out  map[string]*bytes.Buffer // "stdout", "stderr"
	pid  func() int               // pid of the unshare process, 0 before it starts
	sent time.Time
	err  error
}

func newSignalWatch(spec PodSignal, pid func() int) *signalWatch {
	if spec.Signal == 0 {
		spec.Signal = syscall.SIGTERM
	}
	return &signalWatch{spec: spec, pid: pid, out: map[string]*bytes.Buffer{"stdout": {}, "stderr": {}}}
}

// writer returns the io.Writer for one stream.
func (w *signalWatch) writer(stream string) *watchWriter { return &watchWriter{w: w, stream: stream} }

// watchWriter is one stream of a signalWatch.
type watchWriter struct {
	w      *signalWatch
	stream string
}

// Write records p and sends the signal the first time the output matches.
func (ww *watchWriter) Write(p []byte) (int, error) {
	w := ww.w
	w.mu.Lock()
	defer w.mu.Unlock()
	w.out[ww.stream].Write(p)
	if w.sent.IsZero() && w.err == nil && w.spec.After != "" &&
		(strings.Contains(w.out["stdout"].String(), w.spec.After) || strings.Contains(w.out["stderr"].String(), w.spec.After)) {
		switch err := w.signal(); {
		case err == nil:
			w.sent = time.Now()
		case errors.Is(err, errNotStarted): // Start has not returned yet: try on the next write
		default:
			w.err = err
		}
	}
	return len(p), nil
}

// signal sends the signal to the executor: the only child of the unshare
// process (which stays outside the pod's pid namespace).
func (w *signalWatch) signal() error {
	parent := w.pid()
	if parent == 0 {
		return errNotStarted
	}
	child, err := childOf(parent)
	if err != nil {
		return err
	}
	return syscall.Kill(child, w.spec.Signal)
}

// result returns the collected output and when the signal was sent.
func (w *signalWatch) result() (stdout, stderr string, sent time.Time, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sent.IsZero() && w.err == nil {
		w.err = fmt.Errorf("%q never appeared in the executor's output: no signal sent", w.spec.After)
	}
	return w.out["stdout"].String(), w.out["stderr"].String(), w.sent, w.err
}

// childOf finds the process whose parent is pid, by reading /proc/*/stat.
func childOf(pid int) (int, error) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return 0, err
	}
	for _, s := range stats {
		b, err := os.ReadFile(s)
		if err != nil {
			continue // exited meanwhile
		}
		// The command name is in parentheses and may hold spaces: fields
		// after the last ')' are state, ppid, ...
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(pid) {
			continue
		}
		return strconv.Atoi(filepath.Base(filepath.Dir(s)))
	}
	return 0, fmt.Errorf("no child process of pid %d", pid)
}
