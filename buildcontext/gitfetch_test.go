package buildcontext

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/testenv/gitserver"
)

func TestResolveAndFetchGit(t *testing.T) {
	f := newGitFixture(t)
	bare := filepath.Join(f.srv.Root, "app.git")
	gitserver.Git(t, bare, "tag", "-a", "-m", "annotated", "v2", f.second)
	url := "https://" + f.srv.Host + "/app.git"
	o := GitOptions{InsecureSkipTLS: true}
	ctx := context.Background()
	for _, c := range []struct{ ref, commit, version string }{
		{"", f.second, "2"},
		{"dev", f.dev, "dev"},
		{"refs/heads/dev", f.dev, "dev"},
		{"v1", f.first, "1"},
		{"v2", f.second, "2"}, // an annotated tag names the commit it points at
		{"refs/pull/1/head", f.pull, "pr"},
		{f.first, f.first, "1"},
	} {
		t.Run("ref "+c.ref, func(t *testing.T) {
			got, err := ResolveGit(ctx, url, c.ref, o)
			if err != nil || got != c.commit {
				t.Fatalf("ResolveGit(%q) = %s, %v; want %s", c.ref, got, err, c.commit)
			}
			dir := filepath.Join(t.TempDir(), "checkout")
			if err := FetchGit(ctx, url, c.ref, got, dir, o); err != nil {
				t.Fatal(err)
			}
			wantFile(t, filepath.Join(dir, "version"), c.version)
		})
	}
	if _, err := ResolveGit(ctx, url, "nope", o); err == nil || !strings.Contains(err.Error(), `no branch or tag named "nope"`) {
		t.Errorf("unknown ref: %v", err)
	}
	// A commit that the ref does not reach (the branch moved away from it) is an error.
	err := FetchGit(ctx, url, "refs/heads/main", strings.Repeat("1", 40), filepath.Join(t.TempDir(), "c"), o)
	if err == nil {
		t.Error("FetchGit of an unreachable commit succeeded")
	}
}
