package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestRunExitCodesBeforeAnyBuild covers the paths that end before a build: version, help,
// unknown flags (usage, 2), bad values (2, logged), and the refusal outside a build pod (1).
func TestRunExitCodesBeforeAnyBuild(t *testing.T) {
	for _, tc := range []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{[]string{"version"}, 0, "Kiln executor version: ", ""},
		{[]string{"--help"}, 0, "", "Usage of executor:\n  -f, --dockerfile string"},
		{[]string{"--bogus"}, 2, "", "Error: unknown flag: --bogus\nUsage of executor:\n"},
		{[]string{"--verbosity=loud"}, 2, "", "Error: --verbosity=loud: must be one of"},
		{[]string{"--log-format=text"}, 2, "", "ERRO[0000] no --destination given: name one, or use --no-push\n"},
		{[]string{"--log-format=text", "--no-push", "--snapshotMode=redo", "--compression=lz4"}, 2, "",
			"WARN[0000] flag --snapshotMode is deprecated, use --snapshot-mode\nERRO[0000] --compression=lz4: must be gzip or zstd\n"},
		// The test binary is not inside --kaniko-dir: refused before anything is copied or built
		// (and the context does not exist, so no answer could reach a build).
		{[]string{"--log-format=text", "--no-push", "--kaniko-dir=" + t.TempDir(), "--context=dir:///nonexistent-kiln-context"}, 1, "", "refusing"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		if code != tc.code || !strings.HasPrefix(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("%q: code %d, stdout %q, stderr %q; want code %d, stdout starting %q, stderr containing %q",
				tc.args, code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.stderr)
		}
	}
}
