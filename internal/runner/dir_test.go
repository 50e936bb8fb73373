package runner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestDirExitCode(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	r := run(t, root, nil, "sh", "-c", "exit 3")
	var ee *ExitError
	if !errors.As(r.runErr, &ee) || ee.Code != 3 {
		t.Fatalf("want *ExitError code 3, got %v", r.runErr)
	}
	if r.runErr.Error() != "exit status 3" {
		t.Fatalf("error text %q", r.runErr.Error())
	}
	if err := run(t, root, nil, "sh", "-c", "exit 0").runErr; err != nil {
		t.Fatalf("exit 0: %v", err)
	}
}

func TestDirKilledBySignalReports128PlusN(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	r := run(t, root, nil, "sh", "-c", "kill -9 $$")
	var ee *ExitError
	if !errors.As(r.runErr, &ee) || ee.Code != 137 {
		t.Fatalf("want *ExitError 137, got %v", r.runErr)
	}
}

func TestDirStreamsAndEnv(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	r := run(t, root, func(s *Spec) {
		s.Env = append(s.Env, "GREETING=hello world", "DUP=first", "DUP=second")
		s.Stdin = strings.NewReader("from stdin\n")
	}, "sh", "-c", `echo "$GREETING $DUP"; echo oops >&2; cat`)
	if r.runErr != nil {
		t.Fatal(r.runErr)
	}
	if r.out != "hello world second\nfrom stdin\n" {
		t.Fatalf("stdout %q", r.out)
	}
	if r.err != "oops\n" {
		t.Fatalf("stderr %q", r.err)
	}
}

func TestDirSharedWriterForStdoutAndStderr(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	var buf strings.Builder
	err := Run(context.Background(), Spec{
		Root: root, Args: []string{"/bin/sh", "-c", "echo a; echo b >&2; echo c"},
		Stdout: &buf, Stderr: &buf,
	})
	if err != nil {
		t.Fatal(err)
	}
	if buf.String() != "a\nb\nc\n" {
		t.Fatalf("combined output %q", buf.String())
	}
}

func TestDirWorkdirCreatedOwnedAndUsed(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	out := mustRun(t, root, func(s *Spec) { s.Dir = "/work/app"; s.UID, s.GID = 1234, 5678 }, "pwd")
	if out != "/work/app\n" {
		t.Fatalf("pwd %q", out)
	}
	for _, p := range []string{"work", "work/app"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, p), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&0o7777 != 0o755 || st.Uid != 1234 || st.Gid != 5678 {
			t.Errorf("%s: mode %o owner %d:%d, want 755 1234:5678", p, st.Mode&0o7777, st.Uid, st.Gid)
		}
	}
	// An existing directory is used as it is.
	if err := os.Chmod(filepath.Join(root, "work"), 0o700); err != nil {
		t.Fatal(err)
	}
	if out := mustRun(t, root, func(s *Spec) { s.Dir = "work" }, "pwd"); out != "/work\n" {
		t.Fatalf("pwd %q", out)
	}
	if fi, _ := os.Stat(filepath.Join(root, "work")); fi.Mode().Perm() != 0o700 {
		t.Fatalf("existing workdir mode changed to %v", fi.Mode())
	}
}

func TestDirCredentials(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	out := mustRun(t, root, func(s *Spec) {
		s.UID, s.GID, s.Groups = 1000, 2000, []uint32{3000, 3001}
	}, "sh", "-c", "id -u; id -g; id -G")
	if out != "1000\n2000\n2000 3000 3001\n" {
		t.Fatalf("id output %q", out)
	}
	if out := mustRun(t, root, nil, "sh", "-c", "id -u; id -G"); out != "0\n0\n" {
		t.Fatalf("root id output %q", out)
	}
}

func TestDirPathLookupInsideRoot(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	tools := filepath.Join(root, "opt", "tools")
	if err := os.MkdirAll(tools, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tools, "mytool"), []byte("#!/bin/sh\necho mytool ran\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	withPath := func(p string) func(*Spec) { return func(s *Spec) { s.Env = []string{"PATH=" + p} } }
	if out := mustRun(t, root, withPath("/nowhere:/opt/tools:/bin"), "mytool"); out != "mytool ran\n" {
		t.Fatalf("mytool output %q", out)
	}
	// bash exists on the host but not in the root.
	r := run(t, root, withPath("/opt/tools:/bin:/usr/bin"), "bash", "-c", "true")
	if r.runErr == nil || r.runErr.Error() != `exec: "bash": executable file not found in $PATH` {
		t.Fatalf("want Docker's not-found error, got %v", r.runErr)
	}
	// Without PATH in Env, Docker's default PATH applies.
	if out := mustRun(t, root, func(s *Spec) { s.Env = nil }, "echo", "default"); out != "default\n" {
		t.Fatalf("echo %q", out)
	}
}

func TestDirOwnPidNamespace(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	out := mustRun(t, root, nil, "sh", "-c", `echo $PPID; cat /proc/1/cmdline; echo; ls /proc | grep -c '^[0-9]'`)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("output %q", out)
	}
	if lines[0] != "1" {
		t.Errorf("command's parent is pid %s, want 1 (the helper)", lines[0])
	}
	if strings.TrimRight(lines[1], "\x00") != initMarker {
		t.Errorf("pid 1 is %q, want the helper", lines[1])
	}
	if lines[2] != "3" && lines[2] != "4" { // helper, sh, ls, maybe grep's own
		t.Errorf("%s processes visible in the run's /proc; want only its own", lines[2])
	}
}

func TestDirHostnameIsolated(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	before, _ := os.Hostname()
	if out := mustRun(t, root, nil, "hostname"); out != "kiln\n" {
		t.Fatalf("default hostname %q", out)
	}
	if out := mustRun(t, root, func(s *Spec) { s.Hostname = "builder" }, "sh", "-c", "hostname; hostname changed; hostname"); out != "builder\nchanged\n" {
		t.Fatalf("hostname %q", out)
	}
	if after, _ := os.Hostname(); after != before {
		t.Fatalf("host name changed from %q to %q", before, after)
	}
}

func TestDirEtcFilesArePrivateCopies(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	hostHosts, _ := os.ReadFile("/etc/hosts")
	hostResolv, _ := os.ReadFile("/etc/resolv.conf")
	out := mustRun(t, root, nil, "sh", "-c", "cat /etc/hosts; echo ---; cat /etc/resolv.conf; echo 10.9.9.9 evil >> /etc/hosts; echo x > /etc/resolv.conf")
	hosts, resolv, _ := strings.Cut(out, "---\n")
	if !strings.Contains(hosts, "localhost") || !strings.Contains(hosts, "127.0.1.1\tkiln") {
		t.Errorf("/etc/hosts in the run:\n%s", hosts)
	}
	if resolv != string(hostResolv) {
		t.Errorf("/etc/resolv.conf in the run %q, host's %q", resolv, hostResolv)
	}
	if now, _ := os.ReadFile("/etc/hosts"); string(now) != string(hostHosts) {
		t.Fatal("the run changed the host's /etc/hosts")
	}
	if now, _ := os.ReadFile("/etc/resolv.conf"); string(now) != string(hostResolv) {
		t.Fatal("the run changed the host's /etc/resolv.conf")
	}
}

func TestDirHostInvisible(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	marker := filepath.Join(t.TempDir(), "marker")
	if err := os.WriteFile(marker, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, root, nil, "test", "-e", marker)
	var ee *ExitError
	if !errors.As(r.runErr, &ee) || ee.Code != 1 {
		t.Fatalf("host marker %s reachable in the run (err %v)", marker, r.runErr)
	}
	out := mustRun(t, root, nil, "ls", "/")
	if got := strings.Fields(out); strings.Join(got, " ") != "bin dev etc proc sys" {
		t.Fatalf("run's / holds %q", got)
	}
}

func TestDirDevices(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	out := mustRun(t, root, nil, "sh", "-c", "echo gone > /dev/null; head -c 4 /dev/zero | wc -c; ls /dev; readlink /dev/fd; test -d /dev/shm && test -c /dev/pts/ptmx && echo ok")
	for _, want := range []string{"null", "zero", "urandom", "pts", "shm", "/proc/self/fd", "ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("/dev lacks %q:\n%s", want, out)
		}
	}
}

func TestDirNoTraceLeftBehind(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	// An existing /etc without hosts or resolv.conf: both are created inside it.
	etc := filepath.Join(root, "etc")
	if err := os.Mkdir(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2002, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, p := range []string{etc, root} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	before := listing(t, root)
	mustRun(t, root, func(s *Spec) {
		s.Files = []File{{Path: "/usr/share/script", Data: []byte("x"), Mode: 0o755}}
	}, "sh", "-c", ":")
	if after := listing(t, root); after != before {
		t.Fatalf("root changed by a no-op run:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestDirCommandChangesSurviveCleanup(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	// The command writes into /etc, which the runner had to create for
	// /etc/hosts: /etc stays, the mount point file does not.
	mustRun(t, root, nil, "sh", "-c", "echo hi > /etc/greeting; touch /made")
	if data, err := os.ReadFile(filepath.Join(root, "etc", "greeting")); err != nil || string(data) != "hi\n" {
		t.Fatalf("command's file lost: %q %v", data, err)
	}
	for _, gone := range []string{"etc/hosts", "etc/resolv.conf", "proc", "sys", "dev"} {
		if _, err := os.Lstat(filepath.Join(root, gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left in the root (err %v)", gone, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "made")); err != nil {
		t.Fatal(err)
	}
}

func TestDirSymlinkedEtcStaysInsideRoot(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	// /etc -> / makes /etc/hosts resolve to /hosts inside the root, never
	// to the host's /etc.
	if err := os.Symlink("/", filepath.Join(root, "etc")); err != nil {
		t.Fatal(err)
	}
	before := listing(t, root)
	if out := mustRun(t, root, nil, "cat", "/etc/hosts"); !strings.Contains(out, "localhost") {
		t.Fatalf("/etc/hosts %q", out)
	}
	if after := listing(t, root); after != before {
		t.Fatalf("root changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestDirMountPointOfWrongType(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	if err := os.MkdirAll(filepath.Join(root, "etc", "hosts"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := run(t, root, nil, "sh", "-c", ":")
	if r.runErr == nil || !strings.Contains(r.runErr.Error(), "/etc/hosts") {
		t.Fatalf("want an error naming /etc/hosts, got %v", r.runErr)
	}
	if _, err := os.Lstat(filepath.Join(root, "proc")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("failed set-up left /proc behind (err %v)", err)
	}
}

func TestDirBackgroundProcessesDie(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	start := time.Now()
	out := mustRun(t, root, nil, "sh", "-c", "sleep 4242 & echo started")
	if out != "started\n" {
		t.Fatalf("output %q", out)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Run waited %v for a background process", d)
	}
	if pids := hostProcesses(t, "sleep\x004242"); len(pids) > 0 {
		t.Fatalf("background sleep still running as pids %v", pids)
	}
}

func TestDirCancelKillsQuickly(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	before := listing(t, root)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	err := Run(ctx, Spec{Root: root, Args: []string{"/bin/sh", "-c", "sleep 4244 & sleep 100"}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancel took %v", d)
	}
	if pids := hostProcesses(t, "sleep\x004244"); len(pids) > 0 {
		t.Fatalf("sleep survived cancel: pids %v", pids)
	}
	if after := listing(t, root); after != before {
		t.Fatalf("cancelled run left traces:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestDirFilesProvidedOnlyDuringRun(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	before := listing(t, root)
	out := mustRun(t, root, func(s *Spec) {
		s.Files = []File{
			{Path: "/dev/pipes/EOF", Data: []byte("#!/bin/sh\necho heredoc $1\n"), Mode: 0o755},
			{Path: "/tmp/data.txt", Data: []byte("payload"), Mode: 0o640},
		}
	}, "sh", "-c", "/dev/pipes/EOF one; cat /tmp/data.txt; echo; stat -c %a /dev/pipes/EOF /tmp/data.txt")
	if out != "heredoc one\npayload\n755\n640\n" {
		t.Fatalf("output %q", out)
	}
	if after := listing(t, root); after != before {
		t.Fatalf("provided files left traces:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestDirSetupErrorsAreClear(t *testing.T) {
	needRoot(t)
	root := makeRoot(t)
	err := Run(context.Background(), Spec{Root: filepath.Join(root, "missing"), Args: []string{"sh"}})
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing root: %v", err)
	}
	if err := Run(context.Background(), Spec{Root: root}); err == nil {
		t.Fatal("no command accepted")
	}
	r := run(t, root, func(s *Spec) { s.Args = []string{"/bin/nope"} }, "/bin/nope")
	if r.runErr == nil || !strings.Contains(r.runErr.Error(), "/bin/nope") {
		t.Fatalf("missing program: %v", r.runErr)
	}
}

func TestSupported(t *testing.T) {
	needRoot(t)
	if err := Supported(); err != nil {
		t.Fatalf("Supported as root: %v", err)
	}
}

// hostProcesses returns the pids whose cmdline contains pattern.
func hostProcesses(t *testing.T, pattern string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(data), pattern) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}
