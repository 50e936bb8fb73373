package executor

import (
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/buildcontext"
)

func TestGitOptionsLayersFlagsAndEnv(t *testing.T) {
	env := map[string]string{"GIT_PULL_METHOD": "http", "GIT_USERNAME": "u", "GIT_PASSWORD": "p"}
	g, err := gitOptions([]string{"branch=dev", "single-branch=true,recurse-submodules=true"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := buildcontext.GitOptions{Branch: "dev", SingleBranch: true, RecurseSubmodules: true, PullMethod: "http", Username: "u", Password: "p"}
	if g != want {
		t.Fatalf("got %+v, want %+v", g, want)
	}
	env["GIT_TOKEN"] = "tok"
	g, _ = gitOptions(nil, func(k string) string { return env[k] })
	if g.Username != "tok" || g.Password != "" {
		t.Fatalf("GIT_TOKEN: got user %q password %q, want the token as user and no password", g.Username, g.Password)
	}
	if _, err := gitOptions([]string{"brnach=dev"}, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), `"brnach"`) {
		t.Fatalf("misspelt key: got %v", err)
	}
}

func TestExecutorParsesRepeatedGitFlag(t *testing.T) {
	var c Config
	fs := NewFlagSet(&c)
	if err := fs.Parse([]string{"--git", "branch=main", "--git=single-branch=true"}); err != nil {
		t.Fatal(err)
	}
	g, err := gitOptions(c.Git, func(string) string { return "" })
	if err != nil || g.Branch != "main" || !g.SingleBranch {
		t.Fatalf("got %+v, %v; want both --git values applied", g, err)
	}
}
