package runner

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Supported reports whether directory mode can work here, and if not, why.
// It needs root (user namespaces are not used), a usable /proc/self/exe to
// re-execute, and permission to create mount, pid, uts and ipc namespaces
// and mount procfs in them; the last is checked by starting a short-lived
// probe helper. Pod mode has no such needs.
func Supported() error {
	if uid := os.Geteuid(); uid != 0 {
		return fmt.Errorf("directory mode needs root to create namespaces and mounts (running as uid %d); use pod mode (root \"/\") or run as root", uid)
	}
	if _, err := os.Stat("/proc/self/exe"); err != nil {
		return fmt.Errorf("directory mode re-executes this binary via /proc/self/exe, which is not usable: %w", err)
	}
	dir, err := os.MkdirTemp("", "kiln-probe-")
	if err != nil {
		return fmt.Errorf("directory mode probe: %w", err)
	}
	defer os.Remove(dir)
	var stderr bytes.Buffer
	cmd := exec.Command("/proc/self/exe", dir)
	cmd.Args[0] = probeMarker
	cmd.Env = []string{}
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: dirCloneflags}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("directory mode cannot create its namespaces and mounts here: %s", msg)
	}
	return nil
}

// probeMain runs in the probe helper: it performs the privileged steps a
// run needs on a throwaway directory inside its private mount namespace.
func probeMain() int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, format, args...)
		return 1
	}
	if len(os.Args) != 2 {
		return fail("probe: want one directory argument")
	}
	dir := os.Args[1]
	if err := isolateMounts(); err != nil {
		return fail("%v", err)
	}
	if err := unix.Mount("proc", dir, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fail("mount proc: %v", err)
	}
	return 0
}
