package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// busyboxBinary is Debian's busybox-static: it runs in an empty root.
const busyboxBinary = "/bin/busybox"

// DefaultPath is the PATH the base images set, as Docker's images do.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// busyboxMtime fixes file times so the busybox image digest is the same in
// every run (cache tests compare base digests across builds).
func busyboxMtime() time.Time { return time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC) }

// PushBusybox pushes a busybox image to r as repoTag and returns its
// reference: bin/busybox with a symlink per applet, /etc/passwd (root,
// nobody), /etc/group, /tmp (1777), /root and /home; Env PATH, Cmd
// ["/bin/sh"]. It skips the test if busybox-static is not installed.
func PushBusybox(t testing.TB, r *Registry, repoTag string) string {
	t.Helper()
	root := t.TempDir()
	makeBusyboxRoot(t, root)
	return pushDir(t, r, repoTag, root, v1.Config{
		Env: []string{DefaultPath},
		Cmd: []string{"/bin/sh"},
	}, tarOptions{mtime: busyboxMtime()}, "testenv: busybox-static rootfs")
}

// makeBusyboxRoot lays out the busybox filesystem under root.
func makeBusyboxRoot(t testing.TB, root string) {
	t.Helper()
	if _, err := os.Stat(busyboxBinary); err != nil {
		t.Skipf("testenv: %s missing (apt-get install busybox-static): %v", busyboxBinary, err)
	}
	list, err := exec.Command(busyboxBinary, "--list").Output()
	if err != nil {
		t.Fatalf("testenv: %s --list: %v", busyboxBinary, err)
	}
	for _, d := range []string{"bin", "etc", "tmp", "root", "home"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), os.ModeSticky|0o777); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	bin, err := os.ReadFile(busyboxBinary)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	writeFile(t, filepath.Join(root, "bin/busybox"), bin, 0o755)
	for _, applet := range strings.Fields(string(list)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
			t.Fatalf("testenv: applet link: %v", err)
		}
	}
	writeFile(t, filepath.Join(root, "etc/passwd"),
		[]byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"), 0o644)
	writeFile(t, filepath.Join(root, "etc/group"), []byte("root:x:0:\nnobody:x:65534:\n"), 0o644)
}
