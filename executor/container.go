package executor

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// CheckPodLike refuses to build into / unless this looks like a build pod: a container, with
// this binary inside the executor's own directory (as /kaniko/executor is in Kaniko's image).
// The second test keeps a developer's bin/executor, run by mistake on a container-based
// workstation, from unpacking images over that machine's /. Run does this check in pod mode
// unless Config.Force is set.
func CheckPodLike(kanikoDir string) error {
	if !inContainer() {
		return fmt.Errorf("kiln executor builds into / and should only run inside a container; refusing to run here " +
			"(use --force only if this machine's / is a throwaway root)")
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot tell where this executor lives (%v); refusing to build into / without --force", err)
	}
	dir, _ := filepath.Abs(kanikoDir)
	if !within(dir, exe) && !within(DefaultKanikoDir, exe) {
		return fmt.Errorf("this executor (%s) is not inside its directory %s, so this is not a build pod; "+
			"refusing to build into / (use --force only if this machine's / is a throwaway root)", exe, dir)
	}
	return nil
}

// inContainer reports whether this process looks like it runs in a container (Docker, Podman,
// Kubernetes, containerd), where building into / is what the user wants.
func inContainer() bool {
	for _, f := range []string{"/.dockerenv", "/run/.containerenv"} {
		if _, err := os.Stat(f); err == nil {
			return true
		}
	}
	if os.Getenv("KUBERNETES_SERVICE_HOST") != "" || os.Getenv("container") != "" {
		return true
	}
	b, err := os.ReadFile("/proc/1/cgroup")
	if err != nil {
		return false
	}
	s := string(b)
	for _, marker := range []string{"kubepods", "docker", "containerd", "libpod", "crio"} {
		if strings.Contains(s, marker) {
			return true
		}
	}
	return false
}

func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}
