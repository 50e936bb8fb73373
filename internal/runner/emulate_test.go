package runner

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The emulation's unit tests set mounts up in a temporary root (as a pod
// without CAP_SYS_ADMIN would in "/"), act as the run would, undo, and
// compare the root with what it was, times included.

// plainRoot is a small root with old times: /var (empty), /srv/data/x and
// /etc/conf.
func plainRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"var", "srv/data", "etc"} {
		must(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	writeTestFile(t, filepath.Join(root, "srv/data/x"), "original x")
	writeTestFile(t, filepath.Join(root, "etc/conf"), "original conf")
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	for _, d := range []string{"srv/data/x", "etc/conf", "var", "srv/data", "srv", "etc", "."} {
		must(t, os.Chtimes(filepath.Join(root, d), old, old))
	}
	return root
}

// emulate provides s's mounts in root as runPodEmulated does and returns the
// scratch's undo, which the test calls once it acted as the run.
func emulate(t *testing.T, root string, s Spec) (func() error, error) {
	t.Helper()
	sc := newScratch(root)
	err := newEmulation(context.Background(), sc).provide(s)
	sc.seal()
	return sc.undo, err
}

// cacheDir is a directory holding file n with content.
func cacheDir(t *testing.T, content string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cache")
	must(t, os.Mkdir(dir, 0o755))
	writeTestFile(t, filepath.Join(dir, "n"), content)
	return dir
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeTestFile(t *testing.T, p, content string) {
	t.Helper()
	must(t, os.WriteFile(p, []byte(content), 0o644))
}

func readTestFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sameRoot fails the test unless root lists as before, except the mtimes
// of the directories touched, which a run changed itself.
func sameRoot(t *testing.T, root, before string, touched ...string) {
	t.Helper()
	if after := listing(t, root); withoutMtimes(after, touched) != withoutMtimes(before, touched) {
		t.Fatalf("the root changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// withoutMtimes drops the mtime from the listing lines of paths.
func withoutMtimes(listing string, paths []string) string {
	lines := strings.Split(listing, "\n")
	for i, l := range lines {
		for _, p := range paths {
			if strings.HasPrefix(l, p+" ") {
				lines[i], _, _ = strings.Cut(l, " mtime=")
			}
		}
	}
	return strings.Join(lines, "\n")
}

// A cache on the root's file system is renamed to the target (missing parents
// created) and back: the run's writes are the cache's, the root is as before.
func TestEmulateCacheMovedInAndBack(t *testing.T) {
	root, cache := plainRoot(t), cacheDir(t, "1")
	before := listing(t, root)
	undo, err := emulate(t, root, Spec{Mounts: []Mount{{Source: cache, Target: "/var/cache/app"}}})
	must(t, err)
	host := filepath.Join(root, "var/cache/app")
	if fi, err := os.Lstat(host); err != nil || !fi.IsDir() {
		t.Fatalf("target %v, %v: want the cache directory itself", fi, err)
	}
	if _, err := os.Lstat(cache); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the cache is still at its place (%v): it was not moved", err)
	}
	if got := readTestFile(t, filepath.Join(host, "n")); got != "1" {
		t.Fatalf("the target shows %q", got)
	}
	writeTestFile(t, filepath.Join(host, "n"), "2")
	must(t, undo())
	sameRoot(t, root, before)
	if got := readTestFile(t, filepath.Join(cache, "n")); got != "2" {
		t.Fatalf("the cache holds %q after the run, want its write", got)
	}
}

// What was at a target is moved aside for the run and put back after.
func TestEmulateTargetMovedAsideAndBack(t *testing.T) {
	root, cache := plainRoot(t), cacheDir(t, "c")
	before := listing(t, root)
	undo, err := emulate(t, root, Spec{Mounts: []Mount{{Source: cache, Target: "/srv/data"}}})
	must(t, err)
	entries, _ := os.ReadDir(filepath.Join(root, "srv/data"))
	if len(entries) != 1 || entries[0].Name() != "n" {
		t.Fatalf("the target holds %v, want only the cache's n", entries)
	}
	aside, _ := filepath.Glob(filepath.Join(root, "srv/.kiln-aside-data-*"))
	if len(aside) != 1 || readTestFile(t, filepath.Join(aside[0], "x")) != "original x" {
		t.Fatalf("the original is not aside: %v", aside)
	}
	must(t, undo())
	sameRoot(t, root, before)
	if got := readTestFile(t, filepath.Join(cache, "n")); got != "c" {
		t.Fatalf("the cache holds %q", got)
	}
}

// otherFS mounts a tmpfs on a new temporary directory: a file system other
// than the test roots'.
func otherFS(t *testing.T) string {
	t.Helper()
	needRoot(t)
	dir := t.TempDir()
	must(t, unix.Mount("tmpfs", dir, "tmpfs", 0, ""))
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// Across file systems the target is a symlink to the cache; what the run puts
// there instead of the link is removed too.
func TestEmulateCacheAcrossFilesystemsIsALink(t *testing.T) {
	root := plainRoot(t)
	cache := filepath.Join(otherFS(t), "cache")
	must(t, os.Mkdir(cache, 0o755))
	before := listing(t, root)
	undo, err := emulate(t, root, Spec{Mounts: []Mount{{Source: cache, Target: "/var/cache/app"}}})
	must(t, err)
	host := filepath.Join(root, "var/cache/app")
	if link, err := os.Readlink(host); err != nil || link != cache {
		t.Fatalf("target links to %q (%v), want %s", link, err, cache)
	}
	writeTestFile(t, filepath.Join(host, "n"), "through the link")
	must(t, undo())
	sameRoot(t, root, before)
	if got := readTestFile(t, filepath.Join(cache, "n")); got != "through the link" {
		t.Fatalf("the cache holds %q", got)
	}

	// A tool that replaces the link with a directory of its own.
	undo, err = emulate(t, root, Spec{Mounts: []Mount{{Source: cache, Target: "/srv/data"}}})
	must(t, err)
	host = filepath.Join(root, "srv/data")
	must(t, os.Remove(host))
	must(t, os.Mkdir(host, 0o755))
	writeTestFile(t, filepath.Join(host, "mine"), "x")
	must(t, undo())
	sameRoot(t, root, before, "srv") // removing the link changed /srv: the run's doing
}

// ReadOnly and Discard mounts are copies (a directory keeps its mode, owner
// and content; a file source too): writes to them are discarded.
func TestEmulateCopiesDiscardWrites(t *testing.T) {
	needRoot(t)
	root := plainRoot(t)
	src := filepath.Join(t.TempDir(), "src")
	must(t, os.Mkdir(src, 0o750))
	must(t, os.Chown(src, 12, 34))
	writeTestFile(t, filepath.Join(src, "in"), "from src")
	before, srcBefore := listing(t, root), listing(t, src)
	undo, err := emulate(t, root, Spec{Mounts: []Mount{{Source: src, Target: "/mnt/ro", ReadOnly: true},
		{Source: src, Target: "/srv/data", Discard: true}, {Source: filepath.Join(src, "in"), Target: "/etc/conf", ReadOnly: true}}})
	must(t, err)
	for _, p := range []string{"mnt/ro", "srv/data"} {
		var st unix.Stat_t
		must(t, unix.Lstat(filepath.Join(root, p), &st))
		if st.Mode&0o7777 != 0o750 || st.Uid != 12 || st.Gid != 34 {
			t.Errorf("/%s: mode %o owner %d:%d, want the source's 750 12:34", p, st.Mode&0o7777, st.Uid, st.Gid)
		}
		if got := readTestFile(t, filepath.Join(root, p, "in")); got != "from src" {
			t.Errorf("/%s/in = %q", p, got)
		}
		writeTestFile(t, filepath.Join(root, p, "in"), "written by the run")
	}
	if got := readTestFile(t, filepath.Join(root, "etc/conf")); got != "from src" {
		t.Errorf("/etc/conf = %q", got)
	}
	must(t, undo())
	sameRoot(t, root, before)
	sameRoot(t, src, srcBefore)
}

// A tmpfs is an empty directory with mode 1777; a secret file has its mode
// and owner; both replace what was there for the run only.
func TestEmulateTmpfsAndSecretFile(t *testing.T) {
	needRoot(t)
	root := plainRoot(t)
	before := listing(t, root)
	undo, err := emulate(t, root, Spec{Tmpfs: []Tmpfs{{Target: "/srv/data"}, {Target: "/scratch"}},
		Files: []File{{Path: "/etc/conf", Data: []byte("s3cret"), Mode: 0o440, UID: 7, GID: 8, Secret: true},
			{Path: "/run/secrets/tok", Data: []byte("tok"), Mode: 0o400, Secret: true}}})
	must(t, err)
	for _, p := range []string{"srv/data", "scratch"} {
		fi, err := os.Lstat(filepath.Join(root, p))
		if err != nil || fi.Mode() != os.ModeDir|os.ModeSticky|0o777 {
			t.Fatalf("/%s: %v %v, want an empty directory drwxrwxrwt", p, fi.Mode(), err)
		}
		if entries, _ := os.ReadDir(filepath.Join(root, p)); len(entries) != 0 {
			t.Fatalf("/%s holds %v", p, entries)
		}
		writeTestFile(t, filepath.Join(root, p, "f"), "x")
	}
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(root, "etc/conf"), &st))
	if st.Mode&0o7777 != 0o440 || st.Uid != 7 || st.Gid != 8 || readTestFile(t, filepath.Join(root, "etc/conf")) != "s3cret" {
		t.Errorf("/etc/conf: mode %o owner %d:%d", st.Mode&0o7777, st.Uid, st.Gid)
	}
	must(t, undo())
	sameRoot(t, root, before)
}

// A socket mount is a socket of the emulation's at the target, with the
// source's mode and owner, relaying to the source.
func TestEmulateSocketRelays(t *testing.T) {
	needRoot(t)
	root := plainRoot(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	must(t, err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "hello from the agent")
			c.Close()
		}
	}()
	must(t, os.Chmod(sock, 0o660))
	must(t, os.Chown(sock, 1000, 1000))
	before := listing(t, root)
	undo, err := emulate(t, root, Spec{Mounts: []Mount{{Source: sock, Target: "/run/buildkit/ssh_agent.0"}}})
	must(t, err)
	host := filepath.Join(root, "run/buildkit/ssh_agent.0")
	var st unix.Stat_t
	must(t, unix.Lstat(host, &st))
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK || st.Mode&0o777 != 0o660 || st.Uid != 1000 {
		t.Errorf("target mode %o owner %d, want a socket 660 of 1000", st.Mode, st.Uid)
	}
	c, err := net.Dial("unix", host)
	must(t, err)
	got, _ := io.ReadAll(c)
	c.Close()
	if string(got) != "hello from the agent" {
		t.Errorf("through the relay: %q", got)
	}
	must(t, undo())
	sameRoot(t, root, before)
}

// A failure while setting up undoes everything done before it: the cache goes
// back to its place and the root is as before.
func TestEmulateSetupFailuresUndoEverything(t *testing.T) {
	cases := map[string]struct {
		mounts  func(cache, root string) []Mount
		wantErr string
	}{
		"missing source": {func(cache, _ string) []Mount {
			return []Mount{{Source: cache, Target: "/var/cache/app"}, {Source: "/nonexistent/src", Target: "/srv/data"}}
		}, "/nonexistent/src"},
		"nested targets": {func(cache, _ string) []Mount {
			return []Mount{{Source: cache, Target: "/srv"}, {Source: cache + "x", Target: "/srv/data/deeper"}}
		}, "inside /srv"},
		"whole root": {func(cache, _ string) []Mount { return []Mount{{Source: cache, Target: "/"}} }, "whole root"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			root, cache := plainRoot(t), cacheDir(t, "kept")
			must(t, os.Mkdir(cache+"x", 0o755))
			before := listing(t, root)
			undo, err := emulate(t, root, Spec{Mounts: c.mounts(cache, root)})
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("want an error saying %q, got %v", c.wantErr, err)
			}
			must(t, undo())
			sameRoot(t, root, before)
			if got := readTestFile(t, filepath.Join(cache, "n")); got != "kept" {
				t.Fatalf("the cache holds %q", got)
			}
		})
	}
}

// A target that is a mount point cannot be moved aside: the error says so.
func TestEmulateTargetIsMountPoint(t *testing.T) {
	root := plainRoot(t)
	must(t, os.Mkdir(filepath.Join(root, "vol"), 0o755))
	needRoot(t)
	must(t, unix.Mount("tmpfs", filepath.Join(root, "vol"), "tmpfs", 0, ""))
	t.Cleanup(func() { unix.Unmount(filepath.Join(root, "vol"), unix.MNT_DETACH) })
	before := listing(t, root)
	undo, err := emulate(t, root, Spec{Tmpfs: []Tmpfs{{Target: "/scratch"}, {Target: "/vol"}}})
	if err == nil || !strings.Contains(err.Error(), "/vol aside") || !strings.Contains(err.Error(), "mount point") {
		t.Fatalf("want an error naming /vol as a mount point, got %v", err)
	}
	must(t, undo())
	sameRoot(t, root, before)
}

// Whatever the run did to a target (removed it, put a file where a directory
// was), undo leaves the root as before, but for the mtime of the parent whose
// entry the run removed (a mount point cannot be removed; an emulated one can,
// and that is a change the run made to the parent).
func TestEmulateRunChangedTheTarget(t *testing.T) {
	for name, c := range map[string]struct {
		act     func(host string)
		touched []string
	}{
		"removed":          {func(host string) { os.RemoveAll(host) }, []string{"srv", "var"}},
		"replaced by file": {func(host string) { os.RemoveAll(host); os.WriteFile(host, []byte("f"), 0o644) }, []string{"srv", "var"}},
		"replaced by link": {func(host string) { os.RemoveAll(host); os.Symlink("/etc", host) }, []string{"srv", "var"}},
		"emptied, refilled": {func(host string) {
			os.Remove(filepath.Join(host, "n"))
			os.WriteFile(filepath.Join(host, "m"), nil, 0o644)
		}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			root, cache := plainRoot(t), cacheDir(t, "1")
			before := listing(t, root)
			undo, err := emulate(t, root, Spec{Mounts: []Mount{{Source: cache, Target: "/srv/data"}},
				Tmpfs: []Tmpfs{{Target: "/var/tmp"}}})
			must(t, err)
			c.act(filepath.Join(root, "srv/data"))
			c.act(filepath.Join(root, "var/tmp"))
			must(t, undo())
			sameRoot(t, root, before, c.touched...)
		})
	}
}

// Undo never overwrites: when the cache cannot go back to its place (someone
// made a new one there), or something stands where the original must return,
// it says so.
func TestEmulateUndoRefusesToOverwrite(t *testing.T) {
	root, cache := plainRoot(t), cacheDir(t, "1")
	undo, err := emulate(t, root, Spec{Mounts: []Mount{{Source: cache, Target: "/var/cache/app"}}})
	must(t, err)
	must(t, os.Mkdir(cache, 0o755))
	writeTestFile(t, filepath.Join(cache, "other"), "new cache")
	err = undo()
	if err == nil || !strings.Contains(err.Error(), "back to "+cache) {
		t.Fatalf("want an error about moving the cache back, got %v", err)
	}

	dir := t.TempDir()
	aside, host := filepath.Join(dir, "aside"), filepath.Join(dir, "host")
	writeTestFile(t, aside, "original")
	writeTestFile(t, host, "in the way")
	if err := restoreAside(aside, host); err == nil {
		t.Fatal("restoreAside overwrote what is in the way")
	}
	if readTestFile(t, host) != "in the way" || readTestFile(t, aside) != "original" {
		t.Fatal("restoreAside changed a file")
	}
}

// A pod-mode run with emulated mounts (on "/", targets in a temporary
// directory): the command sees them, fails, and everything is gone after it,
// the cache keeping what it wrote; a cancelled run cleans up as well.
func TestPodEmulatedMounts(t *testing.T) {
	needRoot(t)
	base, cache := t.TempDir(), cacheDir(t, "1")
	src := t.TempDir()
	writeTestFile(t, filepath.Join(src, "in"), "from src")
	before, srcBefore := listing(t, base), listing(t, src)
	spec := func(s *Spec) {
		s.EmulateMounts = true
		s.Dir = base + "/c/sub"
		s.Mounts = []Mount{{Source: cache, Target: base + "/c"}, {Source: src, Target: base + "/ro", ReadOnly: true}}
		s.Tmpfs = []Tmpfs{{Target: base + "/t"}}
		s.Files = []File{{Path: base + "/s/secret", Data: []byte("pod-secret"), Mode: 0o400, Secret: true},
			{Path: base + "/pipes/EOF", Data: []byte("#!/bin/sh\necho from script\n"), Mode: 0o755}}
	}
	script := `cat ../n; echo; echo 2 > ../n; pwd
cat ` + base + `/ro/in; echo; echo x > ` + base + `/ro/in
test -z "$(ls -A ` + base + `/t)" && echo tmpfs-empty
cat ` + base + `/s/secret; echo
` + base + `/pipes/EOF
exit 3`
	r := run(t, "/", spec, "sh", "-c", script)
	var ee *ExitError
	if !errors.As(r.runErr, &ee) || ee.Code != 3 {
		t.Fatalf("want exit 3, got %v (stderr %q)", r.runErr, r.err)
	}
	if want := "1\n" + base + "/c/sub\nfrom src\ntmpfs-empty\npod-secret\nfrom script\n"; r.out != want {
		t.Fatalf("output %q, want %q", r.out, want)
	}
	sameRoot(t, base, before)
	sameRoot(t, src, srcBefore)
	if got := readTestFile(t, filepath.Join(cache, "n")); got != "2\n" {
		t.Fatalf("the cache holds %q", got)
	}
	if _, err := os.Stat(filepath.Join(cache, "sub")); err != nil {
		t.Fatalf("the working directory inside the cache was not made there: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	s := Spec{Root: "/", Args: []string{"sh", "-c", "echo 3 > " + base + "/c/n; sleep 100"}, Env: []string{"PATH=/usr/bin:/bin"}}
	spec(&s)
	if err := Run(ctx, s); !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	sameRoot(t, base, before)
	if got := readTestFile(t, filepath.Join(cache, "n")); got != "3\n" {
		t.Fatalf("after the cancelled run the cache holds %q", got)
	}

	r = run(t, "/", func(s *Spec) { s.EmulateMounts, s.Network = true, NetworkNone }, "true")
	if r.runErr == nil || !strings.Contains(r.runErr.Error(), "--network=default") {
		t.Fatalf("--network=none emulated: want an error suggesting --network=default, got %v", r.runErr)
	}
}

// noSysAdminEmulateEnv makes the test binary run TestPodEmulatedWithoutSysAdmin's check itself.
const noSysAdminEmulateEnv = "KILN_RUNNER_TEST_EMULATE_NO_SYS_ADMIN"

// Without CAP_SYS_ADMIN PodIsolation says no (it says yes with it), and
// emulated mounts work. The check runs in a child without the capability.
func TestPodEmulatedWithoutSysAdmin(t *testing.T) {
	if os.Getenv(noSysAdminEmulateEnv) == "1" {
		if err := PodIsolation(); err == nil || !errors.Is(err, unix.EPERM) {
			t.Fatalf("PodIsolation without CAP_SYS_ADMIN: %v, want EPERM", err)
		}
		base, cache := t.TempDir(), cacheDir(t, "1")
		before := listing(t, base)
		out := mustRun(t, "/", func(s *Spec) {
			s.EmulateMounts = true
			s.Mounts = []Mount{{Source: cache, Target: base + "/c"}}
			s.Tmpfs = []Tmpfs{{Target: base + "/t"}}
		}, "sh", "-c", "cat "+base+"/c/n; echo 2 > "+base+"/c/n; touch "+base+"/t/x")
		if out != "1" {
			t.Fatalf("output %q", out)
		}
		sameRoot(t, base, before)
		if got := readTestFile(t, filepath.Join(cache, "n")); got != "2\n" {
			t.Fatalf("the cache holds %q", got)
		}
		return
	}
	needRoot(t)
	if err := PodIsolation(); err != nil {
		t.Fatalf("PodIsolation as root: %v", err)
	}
	setpriv, err := lookSetpriv()
	if err != nil {
		t.Skip(err)
	}
	childWithoutSysAdmin(t, setpriv, "^TestPodEmulatedWithoutSysAdmin$", noSysAdminEmulateEnv)
}

// lookSetpriv finds setpriv (util-linux), which drops capabilities.
func lookSetpriv() (string, error) {
	p, err := exec.LookPath("setpriv")
	if err != nil {
		return "", errors.New("needs setpriv (util-linux) to drop CAP_SYS_ADMIN")
	}
	return p, nil
}

// childWithoutSysAdmin runs the tests matching pattern in a child of this
// test binary without CAP_SYS_ADMIN, with env=1 set, and fails unless they pass.
func childWithoutSysAdmin(t *testing.T, setpriv, pattern, env string) {
	t.Helper()
	cmd := exec.Command(setpriv, "--inh-caps=-sys_admin", "--bounding-set=-sys_admin",
		os.Args[0], "-test.run="+pattern, "-test.v")
	cmd.Env = append(os.Environ(), env+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("child without CAP_SYS_ADMIN: %v\n%s", err, out)
	}
}
