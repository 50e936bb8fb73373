package runner

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// chrootScript sets up, in a private mount namespace, what a CI tool that chroots its jobs
// looks like, then runs the program there and reports what leaked. The jail is a plain
// directory (not a mount point) on a shared tmpfs with a peer mount, so any mount the runner
// made on the jail's filesystem would show up at the peer (and, on a real host, in the host's
// namespace). The jail has /proc, /sys and /dev, as CI chroots do.
const chrootScript = `set -e
mount --make-rprivate /
mount -t tmpfs -o mode=755 jailfs "$OUTER"
mount --make-shared "$OUTER"
mount --bind "$OUTER" "$PEER"
mkdir -p "$OUTER/jail/proc" "$OUTER/jail/sys" "$OUTER/jail/dev" "$OUTER/jail/tmp" "$OUTER/jail/etc"
cp "$PROG" "$OUTER/jail/prog"
cp -a "$ROOT" "$OUTER/jail/imgroot"
mount -t proc proc "$OUTER/jail/proc"
mount --rbind /sys "$OUTER/jail/sys"
mount --rbind /dev "$OUTER/jail/dev"
before=$(grep -c imgroot /proc/self/mountinfo || true)
set +e
chroot "$OUTER/jail" /prog /imgroot /bin/sh -c "$CMD"
code=$?
set -e
after=$(grep imgroot /proc/self/mountinfo || true)
echo "exit=$code mounts-before=$before"
echo "leaked:[$after]"
`

// TestDirInsideChroot: directory mode works when the program using it runs chrooted into a
// directory that is not a mount point (bug 6 of issue 8: every RUN failed with "make /
// rprivate: invalid argument"), and nothing the run mounts reaches any other mount namespace.
func TestDirInsideChroot(t *testing.T) {
	needRoot(t)
	for _, tool := range []string{"unshare", "chroot", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("needs %s (util-linux, coreutils): %v", tool, err)
		}
	}
	prog := filepath.Join(t.TempDir(), "chrootrun")
	build := exec.Command("go", "build", "-o", prog, "./testdata/chrootrun")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the chrooted program: %v\n%s", err, out)
	}
	dir := t.TempDir()
	outer, peer := filepath.Join(dir, "outer"), filepath.Join(dir, "peer")
	for _, d := range []string{outer, peer} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("unshare", "--mount", "--propagation", "unchanged", "sh", "-c", chrootScript)
	cmd.Env = append(os.Environ(), "OUTER="+outer, "PEER="+peer, "PROG="+prog, "ROOT="+makeRoot(t),
		"CMD=echo hello > /made && cat /made && ls /proc/1/ >/dev/null && hostname")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chroot set-up: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	if !strings.Contains(out, "exit=0 ") || !strings.HasPrefix(out, "hello\n") {
		t.Fatalf("the run inside the chroot failed:\nstdout:\n%s\nstderr:\n%s", out, stderr.String())
	}
	if !strings.Contains(out, "leaked:[]") {
		t.Errorf("mounts of the run reached the chroot's mount namespace:\n%s", out)
	}
}
