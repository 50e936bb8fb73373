package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/internal/testenv"
	"github.com/kilnbuild/kiln/registry"
)

// TestLibraryCancelRun cancels a build while its RUN sleeps: Build must return within seconds
// with an error wrapping context.Canceled, every process the RUN started must be gone, the
// root must show no trace of the runner, and a second build into the same root and work
// directory must succeed.
func TestLibraryCancelRun(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	root := filepath.Join(t.TempDir(), "rootfs")
	work := filepath.Join(t.TempDir(), "work")
	opts := func(out *bytes.Buffer, r builder.Reporter) []builder.Option {
		return []builder.Option{builder.WithDirectoryRoot(root), builder.WithWorkDir(work),
			builder.WithContextDir(t.TempDir()), builder.WithPullOptions(registry.WithInsecureAll(true)),
			builder.WithOutput(out), builder.WithReporter(r)}
	}
	before := descendants(t, os.Getpid()) // the registry and anything else already running

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		_, err := builder.Build(ctx, dockerfile.Source{Name: "Dockerfile", Data: []byte(
			"FROM " + base + "\nRUN echo started > /started && sleep 60\n")}, opts(&out, builder.ReporterFunc(func(builder.Event) {}))...)
		done <- err
	}()

	// Wait until the RUN's sleep runs as a descendant of this process.
	var started map[int]string
	deadline := time.Now().Add(time.Minute)
	for {
		started = newDescendants(t, before)
		if hasComm(started, "sleep") {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Build returned before the RUN started: %v\n%s", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sleep process appeared; descendants %v\n%s", started, out.String())
		}
	}

	cancelled := time.Now()
	cancel()
	select {
	case err := <-done:
		if took := time.Since(cancelled); took > 5*time.Second {
			t.Errorf("Build returned %v after the cancel", took)
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Build error %v does not wrap context.Canceled", err)
		}
		if !strings.Contains(err.Error(), "Dockerfile:2") {
			t.Errorf("error %q does not name the instruction's line", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Build did not return within 30s of the cancel")
	}
	waitGone(t, started)

	// The root shows no trace of the runner: the busybox image has no /proc, /sys or /dev,
	// and no /etc/hosts; the runner created them for the RUN only.
	for _, p := range []string{"proc", "sys", "dev", "etc/hosts", "etc/resolv.conf"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("after the cancel the root still holds /%s", p)
		}
	}
	if mi := readFile(t, "/proc/self/mountinfo"); strings.Contains(mi, root) {
		t.Errorf("a mount below %s leaked into the host:\n%s", root, mi)
	}

	// The same root and work directory serve the next build.
	out.Reset()
	img, err := builder.Build(context.Background(), dockerfile.Source{Name: "Dockerfile", Data: []byte(
		"FROM " + base + "\nRUN echo again > /again\n")}, opts(&out, builder.ReporterFunc(func(builder.Event) {}))...)
	if err != nil {
		t.Fatalf("second Build into the same root: %v\n%s", err, out.String())
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	// Only directory entries may come along besides /again (the runner's mount points change
	// /etc's ctime, which a snapshot sees); no file the cancelled run left.
	if got := layerFiles(t, layers[len(layers)-1]); strings.Join(got, " ") != "again" {
		t.Errorf("the second build's RUN layer holds files %v, want only [again]", got)
	}
	files := exportImage(t, img)
	if _, ok := files["started"]; ok {
		t.Errorf("the cancelled RUN's /started reached the second image")
	}
	if files["again"] != "again\n" {
		t.Errorf("/again = %q", files["again"])
	}
}

// layerFiles lists the names of a layer's tar entries that are not directories.
func layerFiles(t *testing.T, l v1.Layer) []string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var names []string
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag != tar.TypeDir {
			names = append(names, hdr.Name)
		}
	}
}

// descendants maps the pid of every process below pid (children, grandchildren ...) to its
// command name, read from /proc.
func descendants(t *testing.T, pid int) map[int]string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	parent := map[int]int{}
	comm := map[int]string{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, name, state, ok := procStat(p)
		if !ok || state == "Z" {
			continue
		}
		parent[p], comm[p] = ppid, name
	}
	out := map[int]string{}
	for p := range parent {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				out[p] = comm[p]
				break
			}
		}
	}
	return out
}

// newDescendants is descendants of this process minus those in before.
func newDescendants(t *testing.T, before map[int]string) map[int]string {
	now := descendants(t, os.Getpid())
	for p := range before {
		delete(now, p)
	}
	return now
}

// procStat reads a process's parent pid, command name and state from /proc/PID/stat.
func procStat(pid int) (ppid int, comm, state string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", "", false
	}
	s := string(b)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return 0, "", "", false
	}
	fields := strings.Fields(s[closing+1:])
	if len(fields) < 2 {
		return 0, "", "", false
	}
	ppid, err = strconv.Atoi(fields[1])
	return ppid, s[open+1 : closing], fields[0], err == nil
}

func hasComm(procs map[int]string, name string) bool {
	for _, c := range procs {
		if c == name {
			return true
		}
	}
	return false
}

// waitGone fails the test unless every process in procs has exited (or is a zombie) within a
// few seconds.
func waitGone(t *testing.T, procs map[int]string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		left := map[int]string{}
		for p, c := range procs {
			if _, comm, state, ok := procStat(p); ok && state != "Z" && comm == c {
				left[p] = c
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes of the cancelled RUN still running: %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLibraryCancelTransfers cancels a build while a base layer download hangs, and a push
// while a blob upload hangs: both must return within seconds with an error wrapping
// context.Canceled. A proxy in front of the test registry does the hanging.
func TestLibraryCancelTransfers(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	img, err := registry.Pull(context.Background(), base, registry.WithInsecureAll(true))
	if err != nil {
		t.Fatal(err)
	}
	configDigest, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("pull", func(t *testing.T) {
		// Manifest and config pass; layer blobs hang until the client gives up.
		proxy := startHangingProxy(t, reg.Addr, func(r *http.Request) bool {
			return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") &&
				!strings.HasSuffix(r.URL.Path, configDigest.String())
		})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := builder.Build(ctx, dockerfile.Source{Name: "Dockerfile", Data: []byte(
				"FROM " + proxy.addr + "/base/busybox:latest\nRUN true\n")},
				builder.WithDirectoryRoot(filepath.Join(t.TempDir(), "rootfs")),
				builder.WithWorkDir(filepath.Join(t.TempDir(), "work")),
				builder.WithContextDir(t.TempDir()),
				builder.WithPullOptions(registry.WithInsecureAll(true)))
			done <- err
		}()
		proxy.waitHanging(t, done)
		expectCancelled(t, cancel, done)
	})

	t.Run("push", func(t *testing.T) {
		// Every upload request hangs.
		proxy := startHangingProxy(t, reg.Addr, func(r *http.Request) bool {
			return strings.Contains(r.URL.Path, "/blobs/uploads/")
		})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := registry.Push(ctx, img, []string{proxy.addr + "/pushed/app:1"}, registry.WithInsecureAll(true))
			done <- err
		}()
		proxy.waitHanging(t, done)
		expectCancelled(t, cancel, done)
	})
}

// hangingProxy forwards to a registry and holds the requests hang selects until the client
// goes away.
type hangingProxy struct {
	addr    string
	hanging chan struct{} // receives once per held request
}

// startHangingProxy serves a hangingProxy in front of target until the test ends.
func startHangingProxy(t *testing.T, target string, hang func(*http.Request) bool) *hangingProxy {
	t.Helper()
	p := &hangingProxy{hanging: make(chan struct{}, 64)}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hang(r) {
			select {
			case p.hanging <- struct{}{}:
			default:
			}
			<-r.Context().Done()
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.addr = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// waitHanging waits until the proxy holds a request, failing if the operation ends first.
func (p *hangingProxy) waitHanging(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case <-p.hanging:
	case err := <-done:
		t.Fatalf("the operation ended before a request hung: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("no request reached the hanging proxy within a minute")
	}
}

// expectCancelled cancels and checks the operation returns promptly with context.Canceled.
func expectCancelled(t *testing.T, cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	cancelled := time.Now()
	cancel()
	select {
	case err := <-done:
		if took := time.Since(cancelled); took > 5*time.Second {
			t.Errorf("returned %v after the cancel", took)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v does not wrap context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("did not return within 30s of the cancel")
	}
}
