package integration

import (
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/testenv"
)

// TestPodFailuresThatHelp: each way a build can be wrong fails fast with a message that names
// what is at fault, a non-zero exit, and nothing pushed.
func TestPodFailuresThatHelp(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	dest := reg.Ref("it/failures:1")
	cases := []struct {
		name     string
		files    map[string]string
		args     []string
		exit     int
		messages []string
	}{
		{"missing Dockerfile", map[string]string{"other": "x"},
			[]string{"--dockerfile", "nope/Dockerfile", "--destination", dest, "--insecure"},
			1, []string{"nope/Dockerfile", "/workspace/nope/Dockerfile"}},
		{"syntax error", map[string]string{"Dockerfile": "FROM " + base + "\nRUN echo ok\nCOPY\n"},
			[]string{"--destination", dest, "--insecure", "--insecure-pull"},
			1, []string{"Dockerfile:3", "COPY"}},
		{"unknown instruction", map[string]string{"Dockerfile": "FROM " + base + "\nFROBNICATE now\n"},
			[]string{"--destination", dest, "--insecure", "--insecure-pull"},
			1, []string{"Dockerfile:2", "FROBNICATE"}},
		{"unknown flag", map[string]string{"Dockerfile": "FROM " + base + "\n"},
			[]string{"--no-such-flag", "--destination", dest},
			2, []string{"unknown flag: --no-such-flag", "Usage", "--dockerfile"}},
		{"missing base image", map[string]string{"Dockerfile": "FROM " + reg.Ref("does/not-exist:1") + "\nRUN echo never\n"},
			[]string{"--destination", dest, "--insecure", "--insecure-pull"},
			1, []string{reg.Ref("does/not-exist:1"), "MANIFEST_UNKNOWN", "Dockerfile:1"}},
		{"unknown target", map[string]string{"Dockerfile": "FROM " + base + " AS one\n"},
			[]string{"--target", "two", "--destination", dest, "--insecure", "--insecure-pull"},
			1, []string{"two", "one"}},
		{"bucket context", map[string]string{"Dockerfile": "FROM " + base + "\n"},
			[]string{"--context", "gs://some-bucket/ctx.tar.gz", "--destination", dest, "--insecure"},
			1, []string{"gs://some-bucket/ctx.tar.gz", "not supported in this build"}},
		{"no destination", map[string]string{"Dockerfile": "FROM " + base + "\n"},
			nil, 2, []string{"--destination", "--no-push"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := writeContext(t, c.files)
			res := testenv.RunPod(t, testenv.Pod{Executor: testenv.BuildExecutor(t), Context: ctx,
				Args: append([]string{"--force", "--log-format", "text"}, c.args...)})
			if res.ExitCode != c.exit {
				t.Errorf("exit code %d, want %d\n%s", res.ExitCode, c.exit, res.Stderr)
			}
			for _, m := range c.messages {
				if !strings.Contains(res.Stderr, m) {
					t.Errorf("stderr lacks %q:\n%s", m, res.Stderr)
				}
			}
			if strings.Contains(res.Stderr, "panic:") || strings.Contains(res.Stderr, "goroutine ") {
				t.Errorf("the executor panicked:\n%s", res.Stderr)
			}
		})
	}
	if _, err := testenv.TryConfig(reg, dest); err == nil {
		t.Errorf("a failed build pushed %s", dest)
	}
}
