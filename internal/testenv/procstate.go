package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ProcState is what this test process holds at one moment: its open file descriptors (number
// -> what they point at) and its goroutines (counted by the function each one is parked in).
// Take one before some work and call NoLeaks after it to find what the work left behind.
type ProcState struct {
	FDs        map[int]string
	Goroutines int
	byFunc     map[string]int
}

// TakeProcState reads /proc/self/fd and every goroutine's stack.
func TakeProcState(t testing.TB) ProcState {
	t.Helper()
	s := ProcState{FDs: map[int]string{}, byFunc: map[string]int{}}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			continue // the directory's own descriptor, closed by now
		}
		s.FDs[n] = target
	}
	describeSockets(s.FDs)
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	for _, g := range strings.Split(string(buf), "\n\n") {
		lines := strings.Split(strings.TrimSpace(g), "\n")
		if len(lines) < 2 || !strings.HasPrefix(lines[0], "goroutine ") {
			continue
		}
		s.Goroutines++
		s.byFunc[goroutineWhere(lines)]++
	}
	return s
}

// goroutineWhere names a goroutine by its state and the first function of its stack outside
// the runtime (where it waits), and the function that started it.
func goroutineWhere(lines []string) string {
	state := lines[0]
	if i := strings.Index(state, "["); i >= 0 {
		state = strings.TrimSuffix(state[i+1:], "]:")
		state, _, _ = strings.Cut(state, ",") // drop ", 2 minutes"
	}
	where, created := "", ""
	for i := 1; i < len(lines); i += 2 {
		fn := strings.TrimSpace(lines[i])
		if strings.HasPrefix(fn, "created by ") {
			created = strings.TrimPrefix(fn, "created by ")
			if k := strings.Index(created, " in goroutine"); k >= 0 {
				created = created[:k]
			}
			continue
		}
		if j := strings.LastIndex(fn, "("); j > 0 && strings.HasSuffix(fn, ")") {
			fn = fn[:j] // the arguments
		}
		if where == "" && !strings.HasPrefix(fn, "runtime.") && !strings.HasPrefix(fn, "internal/") {
			where = fn
		}
	}
	return fmt.Sprintf("[%s] %s (started by %s)", state, where, created)
}

// NoLeaks waits up to wait for this process to hold no more file descriptors and goroutines
// than before (background work of the finished calls may still be ending), then fails the test
// naming each descriptor and each kind of goroutine that is still there. slack goroutines more
// than before are allowed (the test's own, e.g. a timer). It returns the state it ended with.
func (before ProcState) NoLeaks(t testing.TB, wait time.Duration, slack int) ProcState {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		now := TakeProcState(t)
		newFDs := now.newFDs(before)
		if len(newFDs) == 0 && now.Goroutines <= before.Goroutines+slack {
			return now
		}
		if time.Now().After(deadline) {
			for _, fd := range newFDs {
				t.Errorf("file descriptor %d -> %s is still open (it was not before)", fd, now.FDs[fd])
			}
			if now.Goroutines > before.Goroutines+slack {
				t.Errorf("%d goroutines, %d before (allowing %d more); more than before:\n%s",
					now.Goroutines, before.Goroutines, slack, strings.Join(now.moreThan(before), "\n"))
			}
			return now
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// newFDs are the descriptors open now that were not open before, or now point elsewhere.
func (s ProcState) newFDs(before ProcState) []int {
	var out []int
	for fd, target := range s.FDs {
		if before.FDs[fd] != target {
			out = append(out, fd)
		}
	}
	sort.Ints(out)
	return out
}

// moreThan lists the kinds of goroutines of which there are more now than before.
func (s ProcState) moreThan(before ProcState) []string {
	var out []string
	for where, n := range s.byFunc {
		if n > before.byFunc[where] {
			out = append(out, fmt.Sprintf("  %d more (%d): %s", n-before.byFunc[where], n, where))
		}
	}
	sort.Strings(out)
	return out
}

// describeSockets adds the addresses of TCP sockets ("socket:[INODE] tcp 127.0.0.1:41000 ->
// 127.0.0.1:5000") from /proc/net/tcp and tcp6, so a leaked connection names its peer.
func describeSockets(fds map[int]string) {
	byInode := map[string]string{}
	for _, f := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 10 {
				continue
			}
			byInode[fields[9]] = "tcp " + procNetAddr(fields[1]) + " -> " + procNetAddr(fields[2])
		}
	}
	for fd, target := range fds {
		inode, ok := strings.CutPrefix(target, "socket:[")
		if !ok {
			continue
		}
		if addr, ok := byInode[strings.TrimSuffix(inode, "]")]; ok {
			fds[fd] = target + " " + addr
		}
	}
}

// procNetAddr turns /proc/net/tcp's "0100007F:1F90" into "127.0.0.1:8080" (IPv4; IPv6 as is).
func procNetAddr(s string) string {
	ip, port, ok := strings.Cut(s, ":")
	p, err := strconv.ParseUint(port, 16, 16)
	if !ok || err != nil || len(ip) != 8 {
		return s
	}
	v, err := strconv.ParseUint(ip, 16, 32)
	if err != nil {
		return s
	}
	return fmt.Sprintf("%d.%d.%d.%d:%d", v&0xff, v>>8&0xff, v>>16&0xff, v>>24, p)
}
