package executor

import (
	"slices"
	"strings"
	"testing"
)

func TestBuildContextFlag(t *testing.T) {
	good := []string{"src=dir:///workspace/src", "lib=../lib", "base=docker-image://alpine:3.20",
		"tools=oci-layout:///layouts/tools@sha256:" + strings.Repeat("a", 64), "docs=https://host/docs.git#main:site"}
	args := []string{"--no-push"}
	for _, g := range good {
		args = append(args, "--build-context", g)
	}
	c, err := ParseFlags(args)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.BuildContexts, good) {
		t.Errorf("BuildContexts = %q", c.BuildContexts)
	}
	for _, bad := range []string{"no-value", "=dir:///x", "x=ftp://host/x", "scratch=dir:///x", "context=/x"} {
		_, err := ParseFlags([]string{"--no-push", "--build-context", bad})
		if err == nil || !strings.Contains(err.Error(), "--build-context") {
			t.Errorf("--build-context %s: %v, want an error naming the flag", bad, err)
		}
	}
}
