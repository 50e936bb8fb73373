package buildcontext

import (
	"strings"
	"testing"
)

func TestParseGitContext(t *testing.T) {
	const sha = "0123456789abcdef0123456789abcdef01234567"
	for _, c := range []struct {
		rest, method string
		want         gitSource
	}{
		{"github.com/org/app.git", "", gitSource{URL: "https://github.com/org/app.git"}},
		{"github.com/org/app.git#refs/heads/dev", "https", gitSource{URL: "https://github.com/org/app.git", Ref: "refs/heads/dev"}},
		{"example.com:8443/app#" + sha, "http", gitSource{URL: "http://example.com:8443/app", Ref: sha}},
		{"host/app.git#refs/pull/7/head#" + sha, "", gitSource{URL: "https://host/app.git", Ref: "refs/pull/7/head", Commit: sha}},
		{"user:tok@host/app.git#main", "", gitSource{URL: "https://user:tok@host/app.git", Ref: "main"}},
	} {
		got, err := parseGitContext(c.rest, c.method)
		if err != nil {
			t.Errorf("parseGitContext(%q, %q): %v", c.rest, c.method, err)
			continue
		}
		if got != c.want {
			t.Errorf("parseGitContext(%q, %q) = %+v, want %+v", c.rest, c.method, got, c.want)
		}
	}
	if s, _ := parseGitContext("h/a#"+sha, ""); !s.refIsCommit() {
		t.Error("a 40-hex ref should be taken as a commit")
	}
	if s, _ := parseGitContext("h/a#refs/heads/x", ""); s.refIsCommit() {
		t.Error("refs/heads/x is not a commit")
	}
}

func TestParseGitContextErrors(t *testing.T) {
	for _, c := range []struct{ rest, method, want string }{
		{"host/app.git", "ssh", "GIT_PULL_METHOD=ssh"},
		{"/app.git", "", "no host"},
		{"", "", "no host"},
		{"host/app.git#", "", "empty ref"},
		{"host/app.git#main#notasha", "", "not a full commit SHA"},
		{"host/app.git#a#b#c", "", "too many"},
	} {
		_, err := parseGitContext(c.rest, c.method)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseGitContext(%q, %q) = %v, want an error containing %q", c.rest, c.method, err, c.want)
		}
	}
}
