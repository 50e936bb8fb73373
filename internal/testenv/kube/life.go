package kube

import (
	"errors"
	"net"
	"sync"
	"testing"
)

// life is the lifetime of what a start function started: a directory for its
// state, a log, and the steps that undo it, run in reverse order by stop.
// A test's life ends at its cleanup; Shared's at the end of Main.
type life struct {
	mu   sync.Mutex // start functions may run concurrently
	dir  string
	logf func(format string, args ...any)
	// errorf reports a failed undo step (a test's Errorf); nil = logf.
	errorf func(format string, args ...any)
	undo   []func()
	// procs is every process started in this life, for tests and diagnostics.
	procs []*process
	// env is added to the environment of every process started.
	env []string
}

// start runs a daemon (see startProcess) and records it.
func (l *life) start(name, logFile string, argv ...string) (*process, error) {
	p, err := startProcess(name, logFile, l.env, argv...)
	if err == nil {
		l.mu.Lock()
		l.procs = append(l.procs, p)
		l.mu.Unlock()
	}
	return p, err
}

// onStop registers f to run when the life ends.
func (l *life) onStop(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.undo = append(l.undo, f)
}

// fail reports an error of an undo step: what is left behind on the host is
// a bug of this package.
func (l *life) fail(err error) {
	if l.errorf != nil {
		l.errorf("%v", err)
		return
	}
	l.logf("%v", err)
}

// stop runs the undo steps, last registered first.
func (l *life) stop() {
	l.mu.Lock()
	undo := l.undo
	l.undo = nil
	l.mu.Unlock()
	for i := len(undo) - 1; i >= 0; i-- {
		undo[i]()
	}
}

// testLife is a life bound to t: state in t.TempDir(), stopped at cleanup.
func testLife(t testing.TB) *life {
	l := &life{dir: t.TempDir(), logf: t.Logf, errorf: t.Errorf}
	t.Cleanup(l.stop)
	return l
}

// fatalOrSkip ends the test for a start error: skip when the machine cannot
// run it (skipError), fail otherwise.
func fatalOrSkip(t testing.TB, err error) {
	t.Helper()
	var s *skipError
	if errors.As(err, &s) {
		t.Skip(s.reason)
	}
	t.Fatal(err)
}

// freePort returns a TCP port of ip that was free a moment ago. Callers
// retry when a daemon then fails to bind it.
func freePort(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
