package buildstage

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

// tailLines is how many lines of output a failed command's error shows.
const tailLines = 20

// tailBuffer keeps the last bytes written to it, enough for the last n lines of ordinary
// output, for the error of a failed command.
type tailBuffer struct {
	mu    sync.Mutex
	n     int
	buf   []byte
	limit int
	cut   bool // bytes were dropped from the front
}

func newTailBuffer(n int) *tailBuffer { return &tailBuffer{n: n, limit: n * 512} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.limit; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.cut = true
	}
	return len(p), nil
}

// lines returns the last n complete or trailing lines.
func (t *tailBuffer) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	data := t.buf
	if t.cut { // the first line is a fragment
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	text := strings.TrimRight(string(data), "\n")
	if text == "" {
		return nil
	}
	all := strings.Split(text, "\n")
	if len(all) > t.n {
		all = all[len(all)-t.n:]
	}
	return all
}

// writers returns the command's stdout and stderr: each copies to the caller's writer and to
// the tail. When the caller gives one writer for both, both streams share one writer, so the
// sandbox copies them through one pipe and the caller's writer is never written concurrently.
func (t *tailBuffer) writers(stdout, stderr io.Writer) (io.Writer, io.Writer) {
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	out := io.MultiWriter(stdout, t)
	if sameWriter(stdout, stderr) {
		return out, out
	}
	return out, io.MultiWriter(stderr, t)
}

// sameWriter reports whether a and b are the same writer (false for uncomparable types).
func sameWriter(a, b io.Writer) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}
