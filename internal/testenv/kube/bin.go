package kube

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// EnvBinDir names the environment variable that points at the directory of
// Kubernetes binaries (make test sets it from integration/k8stools/build.sh).
const EnvBinDir = "KILN_K8S_BIN"

// buildScript is the repository's builder of the Kubernetes binaries.
const buildScript = "integration/k8stools/build.sh"

// buildLock serializes build.sh runs of concurrent test binaries: two builds
// of the same binary would write the same temporary file.
const buildLock = "/var/cache/kiln/k8s-build.lock"

// skipError is a start failure that means the machine cannot run the thing
// at all (a missing tool or capability): the test is skipped, not failed.
type skipError struct{ reason string }

func (e *skipError) Error() string { return e.reason }

// skipf returns a skipError.
func skipf(format string, args ...any) error {
	return &skipError{reason: fmt.Sprintf(format, args...)}
}

// binDir returns the directory holding all of names: $KILN_K8S_BIN if set,
// else build.sh's cache directory, running build.sh when one is missing.
func binDir(logf func(string, ...any), names ...string) (string, error) {
	if dir := os.Getenv(EnvBinDir); dir != "" {
		if missing := missingBinaries(dir, names); len(missing) > 0 {
			return "", fmt.Errorf("$%s=%s lacks %s (run bash %s)", EnvBinDir, dir, strings.Join(missing, ", "), buildScript)
		}
		return dir, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	script := filepath.Join(root, buildScript)
	if dir, err := cachedBinDir(script); err == nil && len(missingBinaries(dir, names)) == 0 {
		return dir, nil
	}
	return runBuildScript(logf, script, names)
}

// cachedBinDir is the directory build.sh prints, computed the way it does
// (pinned version in its go.mod, $KILN_K8S_CACHE) without running it.
func cachedBinDir(script string) (string, error) {
	f, err := os.Open(filepath.Join(filepath.Dir(script), "go.mod"))
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) == 3 && fields[0] == "require" && fields[1] == "k8s.io/kubernetes" {
			cache := os.Getenv("KILN_K8S_CACHE")
			if cache == "" {
				cache = "/var/cache/kiln/k8s-" + fields[2]
			}
			return filepath.Join(cache, "bin"), nil
		}
	}
	return "", fmt.Errorf("%s: no require k8s.io/kubernetes line", f.Name())
}

// runBuildScript runs build.sh (under a lock shared by all test processes)
// and returns the bin directory it prints. A failed build skips: the machine
// cannot make the binaries (no Go toolchain, no module download).
func runBuildScript(logf func(string, ...any), script string, names []string) (string, error) {
	if err := os.MkdirAll(filepath.Dir(buildLock), 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(buildLock, func() {
		logf("kube: waiting for another test process building the Kubernetes binaries (lock %s)", buildLock)
	})
	if err != nil {
		return "", err
	}
	defer unlock()
	logf("kube: building Kubernetes binaries with %s; the first build takes about 20 minutes (set $%s to skip this)", script, EnvBinDir)
	start := time.Now()
	cmd := exec.Command("bash", script)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.Env = append(os.Environ(), "PATH="+goPath())
	if err := cmd.Run(); err != nil {
		return "", skipf("kube: cannot build the Kubernetes binaries (bash %s: %v):\n%s", script, err, tailString(errOut.String()))
	}
	dir := strings.TrimSpace(out.String())
	if missing := missingBinaries(dir, names); len(missing) > 0 {
		return "", fmt.Errorf("kube: %s printed %q, which lacks %s", script, dir, strings.Join(missing, ", "))
	}
	logf("kube: Kubernetes binaries ready in %s after %s", dir, time.Since(start).Round(time.Second))
	return dir, nil
}

// goPath is $PATH with the Go toolchain's directory added if go is not on it.
func goPath() string {
	path := os.Getenv("PATH")
	if _, err := exec.LookPath("go"); err != nil {
		path += string(os.PathListSeparator) + "/usr/local/go/bin"
	}
	return path
}

// missingBinaries lists the names that are not executables in dir.
func missingBinaries(dir string, names []string) []string {
	var missing []string
	for _, n := range names {
		if fi, err := os.Stat(filepath.Join(dir, n)); err != nil || fi.Mode()&0o111 == 0 {
			missing = append(missing, n)
		}
	}
	return missing
}

// repoRoot finds the checkout from the working directory (go test runs in
// the package directory) by looking for build.sh upwards.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, buildScript)); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("kube: no %s above %s; set $%s to the Kubernetes bin directory", buildScript, dir, EnvBinDir)
		}
	}
}

// tailString keeps the last 4 KiB of s.
func tailString(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 4096 {
		s = s[len(s)-4096:]
	}
	return s
}
