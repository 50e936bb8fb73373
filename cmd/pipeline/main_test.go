package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/pipeline/spec"
)

// call runs the command in-process and returns its exit code and output.
func call(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestPipelineUsage(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		code       int
		toStdout   bool
		extraError string
	}{
		{nil, 2, false, ""},
		{[]string{"help"}, 0, true, ""},
		{[]string{"-h"}, 0, true, ""},
		{[]string{"--help"}, 0, true, ""},
		{[]string{"deploy"}, 2, false, `Error: unknown command "deploy"`},
		{[]string{"--file", "x.yaml"}, 2, false, `Error: unknown command "--file"`},
	} {
		code, stdout, stderr := call(tc.args...)
		if code != tc.code {
			t.Errorf("pipeline %q: exit code %d, want %d", tc.args, code, tc.code)
		}
		got, other := stderr, stdout
		if tc.toStdout {
			got, other = stdout, stderr
		}
		if !strings.HasPrefix(got, tc.extraError) || !strings.HasSuffix(got, usage) || other != "" {
			t.Errorf("pipeline %q: want %q and the usage on %s only; stdout %q, stderr %q",
				tc.args, tc.extraError, map[bool]string{true: "stdout", false: "stderr"}[tc.toStdout], stdout, stderr)
		}
	}
	for _, cmd := range []string{"run", "render", "checkout", "schema", "version"} {
		if !strings.Contains(usage, "pipeline "+cmd) {
			t.Errorf("the usage does not show %q", cmd)
		}
	}
}

func TestPipelineVersion(t *testing.T) {
	code, stdout, stderr := call("version")
	// A test binary has no module version: a local build says devel.
	if code != 0 || stdout != "Kiln pipeline version: devel\n" || stderr != "" {
		t.Errorf("version: %d %q %q", code, stdout, stderr)
	}
}

func TestPipelineSchema(t *testing.T) {
	code, stdout, stderr := call("schema")
	if code != 0 || stderr != "" {
		t.Fatalf("schema: exit code %d, stderr %q", code, stderr)
	}
	if stdout != string(spec.Schema) {
		t.Error("schema printed something other than spec.Schema")
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("the schema is not JSON: %v", err)
	}
	if _, ok := doc["properties"].(map[string]any)["build"]; !ok {
		t.Errorf("the schema has no build property: %v", doc["properties"])
	}
	if code := run([]string{"schema"}, failingWriter{}, &bytes.Buffer{}); code != 1 {
		t.Errorf("schema to an unwritable stdout: exit code %d, want 1", code)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("closed") }
