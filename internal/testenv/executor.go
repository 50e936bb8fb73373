package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// executorEnv names a prebuilt executor binary to use instead of building one.
const executorEnv = "KILN_EXECUTOR"

// executorBuild memoizes the one build of cmd/executor per test process.
type executorBuild struct {
	once sync.Once
	path string
	err  error
}

// theExecutor is the only package-level state: a memo behind sync.Once.
var theExecutor executorBuild

// BuildExecutor returns the path of a static build of ./cmd/executor, built
// once per test process into /var/tmp/kiln-test/bin (Go's build cache keeps
// it fast when sources did not change). KILN_EXECUTOR, when set, names a
// prebuilt binary to use instead.
func BuildExecutor(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(executorEnv); p != "" {
		if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			t.Fatalf("testenv: %s=%q is not an executable file (%v)", executorEnv, p, err)
		}
		return p
	}
	theExecutor.once.Do(func() {
		theExecutor.path, theExecutor.err = buildExecutor()
	})
	if theExecutor.err != nil {
		t.Fatalf("testenv: build executor: %v", theExecutor.err)
	}
	return theExecutor.path
}

// buildExecutor builds cmd/executor of the enclosing module into a file
// named by its content hash, so parallel test processes never overwrite a
// binary another one is using; stale builds are pruned after a day.
func buildExecutor() (string, error) {
	modDir, err := moduleDir()
	if err != nil {
		return "", err
	}
	return buildExecutorIn(modDir, filepath.Join(debianCacheDir, "bin"))
}

// buildExecutorIn builds modDir's cmd/executor into binDir.
func buildExecutorIn(modDir, binDir string) (string, error) {
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", err
	}
	tmp := filepath.Join(binDir, fmt.Sprintf(".executor.tmp%d", os.Getpid()))
	defer os.Remove(tmp)
	if err := goBuild(modDir, "./cmd/executor", tmp); err != nil {
		return "", err
	}
	sum, err := fileSHA256(tmp)
	if err != nil {
		return "", err
	}
	out := filepath.Join(binDir, "executor-"+sum[:16])
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	pruneOld(binDir, "executor-*", out, 24*time.Hour)
	return out, nil
}

// fileSHA256 returns the hex sha256 of a file.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// pruneOld removes files in dir matching pattern, other than keep, that
// were not modified within age (best effort).
func pruneOld(dir, pattern, keep string, age time.Duration) {
	matches, _ := filepath.Glob(filepath.Join(dir, pattern))
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && m != keep && time.Since(fi.ModTime()) > age {
			os.Remove(m)
		}
	}
}

// goBuild builds pkg (relative to dir) as a static binary at out.
func goBuild(dir, pkg, out string) error {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go"
	}
	cmd := exec.Command(goTool, "build", "-o", out, pkg)
	cmd.Dir = dir
	// Static: the pod root has no libc.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s in %s: %v\n%s", pkg, dir, err, b)
	}
	return nil
}

// moduleDir finds the root of the module the test runs in.
func moduleDir() (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go"
	}
	b, err := exec.Command(goTool, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(b))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module (go env GOMOD = %q)", gomod)
	}
	return filepath.Dir(gomod), nil
}
