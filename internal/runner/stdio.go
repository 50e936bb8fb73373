package runner

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
)

// stdio connects a Spec's streams to a child process. Writers that are not
// *os.File get a pipe copied by our own goroutines, so that the run does not
// wait on grandchildren that keep a copy of the pipe open: Run waits for the
// process, kills what is left, and only then drains the pipes.
type stdio struct {
	stdin, stdout, stderr *os.File // what the child receives; nil = /dev/null
	childEnds             []*os.File
	wg                    sync.WaitGroup
}

func newStdio(in io.Reader, out, errw io.Writer) (*stdio, error) {
	s := &stdio{}
	var err error
	if s.stdin, err = s.input(in); err != nil {
		return nil, err
	}
	if s.stdout, err = s.output(out); err != nil {
		s.close()
		return nil, err
	}
	if sameWriter(out, errw) {
		s.stderr = s.stdout
	} else if s.stderr, err = s.output(errw); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *stdio) input(r io.Reader) (*os.File, error) {
	if r == nil {
		return nil, nil
	}
	if f, ok := r.(*os.File); ok {
		return f, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("stdin pipe: %w", err)
	}
	s.childEnds = append(s.childEnds, pr)
	// Not waited for: a Reader blocked in Read cannot be interrupted. The
	// copy ends at EOF or at the first write after the process is gone.
	go func() {
		_, _ = io.Copy(pw, r)
		pw.Close()
	}()
	return pr, nil
}

func (s *stdio) output(w io.Writer) (*os.File, error) {
	if w == nil {
		return nil, nil
	}
	if f, ok := w.(*os.File); ok {
		return f, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("output pipe: %w", err)
	}
	s.childEnds = append(s.childEnds, pw)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer pr.Close()
		if _, err := io.Copy(w, pr); err != nil {
			// Keep draining so the process never blocks on a full pipe.
			_, _ = io.Copy(io.Discard, pr)
		}
	}()
	return pw, nil
}

// attach sets cmd's streams. A nil *os.File must stay a nil interface,
// so that exec.Cmd opens the null device for it.
func (s *stdio) attach(cmd *exec.Cmd) {
	if s.stdin != nil {
		cmd.Stdin = s.stdin
	}
	if s.stdout != nil {
		cmd.Stdout = s.stdout
	}
	if s.stderr != nil {
		cmd.Stderr = s.stderr
	}
}

// close releases the child's ends of the pipes; call it once the child
// has started (it holds its own copies) or when starting failed.
func (s *stdio) close() {
	for _, f := range s.childEnds {
		f.Close()
	}
	s.childEnds = nil
}

// wait blocks until every output pipe reached EOF, i.e. until no process
// holds a write end any more.
func (s *stdio) wait() { s.wg.Wait() }

// sameWriter reports whether a and b are the same writer, so both streams
// share one pipe and one copier (writers are rarely safe for concurrent use).
func sameWriter(a, b io.Writer) (same bool) {
	defer func() {
		if recover() != nil { // uncomparable dynamic types
			same = false
		}
	}()
	return a != nil && a == b
}
