package runner

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// addApplets links more busybox applets into a test root.
func addApplets(t *testing.T, root string, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", n)); err != nil {
			t.Fatal(err)
		}
	}
}

// listen accepts connections on 127.0.0.1 until the test ends and returns its port.
func listen(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello\n"))
			c.Close()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

func TestDirTmpfsDiscardAndSecretFiles(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "keep"), []byte("original"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := listing(t, root)
	script := `set -e
cat /src/keep; echo
echo changed > /src/keep; echo new > /src/new; cat /src/keep
test -z "$(ls -A /t)" && echo tmpfs-empty
echo x > /t/x
stat -c '%a %u %g' /run/secrets/tok; cat /run/secrets/tok; echo
echo y > /run/secrets/tok 2>/dev/null || echo secret-ro
grep -q ' /t tmpfs ' /proc/mounts && echo tmpfs-mounted`
	for i := 0; i < 2; i++ { // twice: the tmpfs is empty again, the source unchanged
		out := mustRun(t, root, func(s *Spec) {
			s.Mounts = []Mount{{Source: src, Target: "/src", Discard: true}}
			s.Tmpfs = []Tmpfs{{Target: "/t", Size: 1 << 20}}
			s.Files = []File{{Path: "/run/secrets/tok", Data: []byte("s3cret"), Mode: 0o400, UID: 1234, GID: 99, Secret: true}}
		}, "sh", "-c", script)
		want := "original\nchanged\ntmpfs-empty\n400 1234 99\ns3cret\nsecret-ro\ntmpfs-mounted\n"
		if out != want {
			t.Fatalf("run %d output %q, want %q", i, out, want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(src, "keep")); string(b) != "original" {
		t.Errorf("a discarded write reached the source: %q", b)
	}
	if _, err := os.Stat(filepath.Join(src, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a discarded new file reached the source (%v)", err)
	}
	if after := listing(t, root); after != before {
		t.Fatalf("the run left traces:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestDirNetworkNone(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	addApplets(t, root, "nc")
	port := listen(t)
	probe := fmt.Sprintf("nc -w 2 127.0.0.1 %d </dev/null || echo unreachable; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '", port)
	if out := mustRun(t, root, nil, "sh", "-c", probe); !strings.HasPrefix(out, "hello\n") {
		t.Fatalf("host network: %q", out)
	}
	out := mustRun(t, root, func(s *Spec) { s.Network = NetworkNone }, "sh", "-c", probe+"; nc -l -p 7777 -w 1 </dev/null >/dev/null & sleep 0.2; echo ping | nc -w 1 127.0.0.1 7777 && echo loopback-up")
	if !strings.HasPrefix(out, "unreachable\nlo\n") || !strings.Contains(out, "loopback-up") || strings.Count(out, "\n") != 3 {
		t.Fatalf("network none: want unreachable, only lo, and a working loopback; got %q", out)
	}
}

// Pod-mode mounts run on the real root "/" in a private mount namespace, with
// mount points in a temporary directory only.
func TestPodMountsTmpfsAndSecretFiles(t *testing.T) {
	needRoot(t)
	base := t.TempDir()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "in"), []byte("from src"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := listing(t, base)
	script := fmt.Sprintf(`set -e
cd %[1]s
cat ro/in; echo
echo x > ro/in 2>/dev/null || echo ro
echo y > rw/in; cat rw/in
test -z "$(ls -A t)" && echo tmpfs-empty
cat s/secret; echo
grep -q " %[1]s/t tmpfs " /proc/self/mounts && echo mounted-here
%[1]s/pipes/EOF`, base)
	out := mustRun(t, "/", func(s *Spec) {
		s.Mounts = []Mount{{Source: src, Target: base + "/ro", ReadOnly: true}, {Source: src, Target: base + "/rw", Discard: true}}
		s.Tmpfs = []Tmpfs{{Target: base + "/t"}}
		s.Files = []File{{Path: base + "/s/secret", Data: []byte("pod-secret"), Mode: 0o400, Secret: true},
			{Path: base + "/pipes/EOF", Data: []byte("#!/bin/sh\necho from script\n"), Mode: 0o755}}
		s.TempDir = t.TempDir()
	}, "sh", "-c", script)
	if want := "from src\nro\ny\ntmpfs-empty\npod-secret\nmounted-here\nfrom script\n"; out != want {
		t.Fatalf("output %q, want %q", out, want)
	}
	if after := listing(t, base); after != before {
		t.Fatalf("the run left traces:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if b, _ := os.ReadFile("/proc/self/mounts"); strings.Contains(string(b), base) {
		t.Fatalf("a mount of the run reached this namespace:\n%s", b)
	}
	if b, _ := os.ReadFile(filepath.Join(src, "in")); string(b) != "from src" {
		t.Errorf("the source changed: %q", b)
	}
}

func TestPodNetworkNone(t *testing.T) {
	needRoot(t)
	port := listen(t)
	probe := fmt.Sprintf("busybox nc -w 2 127.0.0.1 %d </dev/null || echo unreachable", port)
	if out := mustRun(t, "/", nil, "sh", "-c", probe); out != "hello\n" {
		t.Fatalf("host network: %q", out)
	}
	if out := mustRun(t, "/", func(s *Spec) { s.Network = NetworkNone }, "sh", "-c", probe); out != "unreachable\n" {
		t.Fatalf("network none: %q", out)
	}
}

// noSysAdminEnv makes the test binary run TestPodIsolationNeedsSysAdmin's check itself.
const noSysAdminEnv = "KILN_RUNNER_TEST_NO_SYS_ADMIN"

// A pod without CAP_SYS_ADMIN (the usual build pod) cannot have mounts or
// --network=none: the error says why. The check runs in a child without the
// capability (setpriv), as this test process keeps its own.
func TestPodIsolationNeedsSysAdmin(t *testing.T) {
	if os.Getenv(noSysAdminEnv) == "1" {
		for _, mod := range []func(*Spec){
			func(s *Spec) { s.Tmpfs = []Tmpfs{{Target: t.TempDir()}} },
			func(s *Spec) { s.Network = NetworkNone },
		} {
			r := run(t, "/", mod, "true")
			if r.runErr == nil || !strings.Contains(r.runErr.Error(), "CAP_SYS_ADMIN") {
				t.Errorf("want an error naming CAP_SYS_ADMIN, got %v", r.runErr)
			}
		}
		// A plain RUN needs no privilege.
		mustRun(t, "/", nil, "true")
		return
	}
	needRoot(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("needs setpriv (util-linux) to drop CAP_SYS_ADMIN")
	}
	cmd := exec.Command(setpriv, "--inh-caps=-sys_admin", "--bounding-set=-sys_admin",
		os.Args[0], "-test.run=^TestPodIsolationNeedsSysAdmin$", "-test.v")
	cmd.Env = append(os.Environ(), noSysAdminEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("child without CAP_SYS_ADMIN: %v\n%s", err, out)
	}
}
