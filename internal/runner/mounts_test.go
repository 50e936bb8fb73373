package runner

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestDirMountReadWrite(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	ws := t.TempDir()
	if err := os.WriteFile(filepath.Join(ws, "in.txt"), []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := listing(t, root)
	out := mustRun(t, root, func(s *Spec) {
		s.Mounts = []Mount{{Source: ws, Target: "/workspace"}}
		s.Dir = "/workspace"
	}, "sh", "-c", "pwd; cat in.txt; mkdir -p out; echo built > out/app")
	if out != "/workspace\nfrom host\n" {
		t.Fatalf("output %q", out)
	}
	if b, err := os.ReadFile(filepath.Join(ws, "out", "app")); err != nil || string(b) != "built\n" {
		t.Fatalf("host sees out/app = %q, %v", b, err)
	}
	if after := listing(t, root); after != before {
		t.Fatalf("the mount point stayed in the root:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestDirMountReadOnlyIncludingSubmounts(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	src := t.TempDir()
	sub := filepath.Join(src, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	// A mount below the source: rbind carries it, and read-only covers it.
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs below the mount source here: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(sub, unix.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(sub, "data"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, root, func(s *Spec) {
		s.Mounts = []Mount{{Source: src, Target: "/src", ReadOnly: true}}
	}, "sh", "-c", "cat /src/sub/data; echo; echo x > /src/new || echo top-ro; echo y > /src/sub/data || echo sub-ro")
	if r.runErr != nil {
		t.Fatalf("%v (stderr %q)", r.runErr, r.err)
	}
	if r.out != "keep\ntop-ro\nsub-ro\n" {
		t.Fatalf("output %q (stderr %q)", r.out, r.err)
	}
	if b, _ := os.ReadFile(filepath.Join(sub, "data")); string(b) != "keep" {
		t.Fatalf("read-only submount written: %q", b)
	}
	if _, err := os.Stat(filepath.Join(src, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read-only mount written: %v", err)
	}
}

func TestDirMountIsPrivateToTheRun(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	ws := t.TempDir()
	stdinR, stdinW := io.Pipe()
	stdoutR, stdoutW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), Spec{
			Root: root, Args: []string{"/bin/sh", "-c", "echo ready; read x"},
			Mounts: []Mount{{Source: ws, Target: "/workspace"}},
			Stdin:  stdinR, Stdout: stdoutW,
		})
		stdoutW.Close()
	}()
	line, err := bufio.NewReader(stdoutR).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("run did not start: %q %v (%v)", line, err, <-done)
	}
	// While the command runs, this process's mount table lacks its mounts.
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(info), root) {
		t.Errorf("the run's mounts show on the host:\n%s", info)
	}
	stdinW.Write([]byte("go\n"))
	stdinW.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestDirMountTargetSymlinkStaysInsideRoot(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	// /ws -> an absolute path that exists on the host: inside the root it
	// must resolve to root/<that path>, never to the host's directory.
	hostDir := t.TempDir()
	if err := os.Symlink(hostDir, filepath.Join(root, "ws")); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("mounted"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := listing(t, root)
	out := mustRun(t, root, func(s *Spec) {
		s.Mounts = []Mount{{Source: src, Target: "/ws"}}
	}, "cat", "/ws/f")
	if out != "mounted" {
		t.Fatalf("output %q", out)
	}
	if entries, _ := os.ReadDir(hostDir); len(entries) != 0 {
		t.Fatalf("the host directory %s the symlink names was used: %v", hostDir, entries)
	}
	if after := listing(t, root); after != before {
		t.Fatalf("root changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestDirWorkdirInsideMountCreatedThere(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	ws := t.TempDir()
	out := mustRun(t, root, func(s *Spec) {
		s.Mounts = []Mount{{Source: ws, Target: "/workspace"}}
		s.Dir = "/workspace/a/b"
		s.UID, s.GID = 1234, 5678
	}, "sh", "-c", "pwd; touch made")
	if out != "/workspace/a/b\n" {
		t.Fatalf("pwd %q", out)
	}
	for _, p := range []string{"a", "a/b", "a/b/made"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(ws, p), &st); err != nil {
			t.Fatalf("host workspace lacks %s: %v", p, err)
		}
		if st.Uid != 1234 || st.Gid != 5678 {
			t.Errorf("%s owned by %d:%d, want 1234:5678", p, st.Uid, st.Gid)
		}
	}
	if _, err := os.Lstat(filepath.Join(root, "workspace")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("workdir created in the image under the mount point (err %v)", err)
	}
}

func TestDirMountFile(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	f := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(f, []byte(`{"auths":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	before := listing(t, root)
	out := mustRun(t, root, func(s *Spec) {
		s.Mounts = []Mount{{Source: f, Target: "/kaniko/.docker/config.json", ReadOnly: true}}
	}, "cat", "/kaniko/.docker/config.json")
	if out != `{"auths":{}}` {
		t.Fatalf("output %q", out)
	}
	if after := listing(t, root); after != before {
		t.Fatalf("root changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestDirMountErrorsNameTheMount(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	dir := t.TempDir()
	before := listing(t, root)
	for _, c := range []struct {
		mounts []Mount
		want   string
	}{
		{[]Mount{{Source: filepath.Join(dir, "missing"), Target: "/m"}}, "missing"},
		{[]Mount{{Source: dir, Target: "/"}}, "whole root"},
		{[]Mount{{Source: dir, Target: "/etc"}}, "would hide /etc/hosts"},
		{[]Mount{{Source: dir, Target: "/proc/x"}}, "inside /proc"},
		{[]Mount{{Source: dir, Target: "/dev/shm"}}, "inside /dev"},
		{[]Mount{{Source: dir, Target: "/a"}, {Source: dir, Target: "/a/b"}}, "/a/b: it lies inside /a"},
		{[]Mount{{Source: dir, Target: "/a"}, {Source: dir, Target: "/a"}}, "it would hide /a"},
		{[]Mount{{Source: dir}}, "no target"},
	} {
		r := run(t, root, func(s *Spec) { s.Mounts = c.mounts }, "true")
		if r.runErr == nil || !strings.Contains(r.runErr.Error(), c.want) {
			t.Errorf("mounts %v: want an error containing %q, got %v", c.mounts, c.want, r.runErr)
		}
	}
	if after := listing(t, root); after != before {
		t.Fatalf("refused mounts left traces:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestDirMountCancelledRunCleansUp(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	ws := t.TempDir()
	before := listing(t, root)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	err := Run(ctx, Spec{Root: root, Args: []string{"/bin/sh", "-c", "touch /workspace/started; sleep 100"},
		Mounts: []Mount{{Source: ws, Target: "/workspace"}}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	if after := listing(t, root); after != before {
		t.Fatalf("cancelled run left traces:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
