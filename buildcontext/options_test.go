package buildcontext

import (
	"strings"
	"testing"
)

func TestParseGitFlag(t *testing.T) {
	got, err := ParseGitFlag("branch=release/1.x,single-branch=true,recurse-submodules=1,insecure-skip-tls=true,depth=3")
	if err != nil {
		t.Fatal(err)
	}
	want := GitOptions{Branch: "release/1.x", SingleBranch: true, RecurseSubmodules: true, InsecureSkipTLS: true, Depth: 3}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// Kaniko's default value of the flag parses to the zero options.
	got, err = ParseGitFlag("branch=,single-branch=false,recurse-submodules=false")
	if err != nil || got != (GitOptions{}) {
		t.Fatalf("default value: got %+v, %v", got, err)
	}
	if got, err := ParseGitFlag(""); err != nil || got != (GitOptions{}) {
		t.Fatalf("empty: got %+v, %v", got, err)
	}
}

func TestParseGitFlagErrorsNameTheKey(t *testing.T) {
	for in, want := range map[string]string{
		"branch=main,colour=blue":   `unknown key "colour"`,
		"single-branch=maybe":       `key "single-branch"`,
		"recurse-submodules=yes!":   `key "recurse-submodules"`,
		"insecure-skip-tls=2":       `key "insecure-skip-tls"`,
		"depth=-1":                  `key "depth"`,
		"branch=main,single-branch": `"single-branch" is not in the key=value format`,
	} {
		_, err := ParseGitFlag(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseGitFlag(%q) = %v, want an error containing %s", in, err, want)
		}
	}
}
