package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/testenv"
)

// writeContext writes files (path -> content) into a fresh context dir and returns it.
func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// buildInPod runs the executor as a build pod with the context and returns the result; it
// fails the test when the exit code is not want.
func buildInPod(t *testing.T, ctx string, want int, args ...string) testenv.PodResult {
	t.Helper()
	res := testenv.RunPod(t, testenv.Pod{
		Executor: testenv.BuildExecutor(t),
		Context:  ctx,
		Args:     append([]string{"--force", "--context", "dir:///workspace", "--log-format", "text"}, args...),
	})
	if res.ExitCode != want {
		t.Fatalf("executor exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", res.ExitCode, want, res.Stdout, res.Stderr)
	}
	return res
}

// file returns the entry at p, failing the test when it is missing.
func file(t *testing.T, fs map[string]testenv.FileEntry, p string) testenv.FileEntry {
	t.Helper()
	e, ok := fs[p]
	if !ok {
		var near []string
		dir := filepath.Dir(p)
		for k := range fs {
			if strings.HasPrefix(k, dir+"/") {
				near = append(near, k)
			}
		}
		t.Fatalf("%s missing from the image; in %s: %v", p, dir, near)
	}
	return e
}

func absent(t *testing.T, fs map[string]testenv.FileEntry, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, ok := fs[p]; ok {
			t.Errorf("%s must not be in the image", p)
		}
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("integration tests need root (mount and pid namespaces, chroot); this machine runs them as non-root")
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
