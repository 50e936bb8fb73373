package kube

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// sharedThing is one server per test binary, started on first use and
// stopped by Main.
type sharedThing[T any] struct {
	life     *life
	value    T
	started  bool
	startErr error
}

// shared holds what Shared and SharedCluster hand out. It is per-process by
// nature (its lifetime is the test binary's), hence a package variable.
var shared struct {
	mu      sync.Mutex
	inMain  bool
	server  sharedThing[*APIServer]
	cluster sharedThing[*Cluster]
	// clusterOn is set once SharedCluster starts: it holds the machine's
	// cluster lock until Main ends, so StartCluster would wait forever.
	clusterOn atomic.Bool
}

// Main runs the package's tests (m.Run), then stops what Shared and
// SharedCluster started, removing their state, and exits. Use it as TestMain:
//
//	func TestMain(m *testing.M) { kube.Main(m) }
func Main(m *testing.M) {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	for _, l := range []*life{shared.cluster.life, shared.server.life} {
		if l != nil {
			l.stop()
			os.RemoveAll(l.dir)
		}
	}
	shared.mu.Unlock()
	os.Exit(code)
}

// Shared returns the test binary's one API server, starting it on first use
// (as StartAPIServer does, a few seconds) and stopping it when Main ends.
// Tests sharing it must keep apart: use a.Namespace(t) for a fresh namespace
// and give cluster-scoped objects unique names. It needs Main as TestMain.
func Shared(t testing.TB) *APIServer {
	t.Helper()
	return useShared(t, &shared.server, func(l *life) (*APIServer, error) {
		hostIP, _ := HostIP()
		return startAPIServer(l, apiOptions{bindIP: "127.0.0.1", hostIP: hostIP})
	})
}

// SharedCluster returns the test binary's one cluster (see StartCluster),
// starting it on first use and stopping it when Main ends. Tests keep apart
// by c.Namespace(t); c.AllowInsecureRegistry adds their registries. While it
// runs, other test binaries' clusters wait (one per machine). It needs Main
// as TestMain.
func SharedCluster(t testing.TB) *Cluster {
	t.Helper()
	return useShared(t, &shared.cluster, func(l *life) (*Cluster, error) {
		shared.clusterOn.Store(true)
		return startCluster(l, ClusterOptions{})
	})
}

// useShared returns s's value, starting it with start the first time.
func useShared[T any](t testing.TB, s *sharedThing[T], start func(*life) (T, error)) T {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.inMain {
		t.Fatal("kube: Shared and SharedCluster need the package's TestMain to be: func TestMain(m *testing.M) { kube.Main(m) }")
	}
	if !s.started {
		s.started = true
		s.life, s.startErr = startSharedLife(t)
		if s.startErr == nil {
			s.value, s.startErr = start(s.life)
			// t may end before the server does: later messages go to stderr.
			s.life.logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
			if s.startErr != nil {
				s.life.stop()
				os.RemoveAll(s.life.dir)
				s.life = nil
			}
		}
	}
	if s.startErr != nil {
		fatalOrSkip(t, s.startErr)
	}
	return s.value
}

// startSharedLife makes the life of a shared server: a directory of its own
// (named after this process, so that the next run can remove it if this
// process dies in a panic, before Main's stop), the start's messages to t.
func startSharedLife(t testing.TB) (*life, error) {
	removeDeadSharedDirs(t.Logf)
	dir, err := os.MkdirTemp("", sharedDirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, fmt.Errorf("kube: %w", err)
	}
	return &life{dir: dir, logf: t.Logf}, nil
}

const sharedDirPrefix = "kiln-kube-shared-"

// removeDeadSharedDirs removes shared servers' directories whose process is
// gone (its daemons died with it: they are killed when it exits).
func removeDeadSharedDirs(logf func(string, ...any)) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), sharedDirPrefix+"*-*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(filepath.Base(d), sharedDirPrefix), "-", 2)[0])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			logf("kube: removing %s, left by test process %d that died", d, pid)
			os.RemoveAll(d)
		}
	}
}
