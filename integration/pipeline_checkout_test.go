package integration

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kilnbuild/kiln/internal/testenv/gitserver"
)

// TestPipelineCheckout clones from a real git server over smart HTTP with `pipeline checkout`,
// the first step of a rendered Job: the remote's HEAD, a branch, a tag and a commit; an
// unknown ref and a folder that is not empty fail, naming what is wrong.
func TestPipelineCheckout(t *testing.T) {
	srv := gitserver.Serve(t, false)
	work := gitserver.NewRepo(t)
	first := gitserver.Commit(t, work, "v1", map[string]string{"app.txt": "v1\n", "src/main.go": "package main\n"})
	gitserver.Git(t, work, "tag", "v1.0")
	gitserver.Git(t, work, "checkout", "-q", "-b", "feature")
	gitserver.Commit(t, work, "v2 on a branch", map[string]string{"app.txt": "v2\n"})
	gitserver.Git(t, work, "checkout", "-q", "main")
	gitserver.Commit(t, work, "v3", map[string]string{"app.txt": "v3\n"})
	srv.Publish(t, work, "app.git")
	repo := srv.URL + "/app.git"
	c := newCLI(t, t.TempDir())

	for _, tc := range []struct {
		ref, want string
	}{
		{"", "v3\n"},
		{"main", "v3\n"},
		{"feature", "v2\n"},
		{"v1.0", "v1\n"},
		{first, "v1\n"},
	} {
		t.Run("ref "+tc.ref, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "src")
			args := []string{"checkout", "--git", repo, "--dir", dir}
			if tc.ref != "" {
				args = append(args, "--ref", tc.ref)
			}
			res := c.want(t, 0, args...)
			if got := readFile(t, filepath.Join(dir, "app.txt")); got != tc.want {
				t.Errorf("app.txt = %q, want %q", got, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "src/main.go")); err != nil {
				t.Errorf("src/main.go not checked out: %v", err)
			}
			wantAll(t, "the output", res.stdout, "Checked out "+repo, "into "+dir)
		})
	}

	t.Run("unknown ref", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "src")
		res := c.want(t, 1, "checkout", "--git", repo, "--ref", "no-such-branch", "--dir", dir)
		wantAll(t, "the error", res.stderr, "checkout "+repo+"#no-such-branch: ", `no branch or tag named "no-such-branch"`)
		wantNone(t, "the error", res.stderr, "--context")
	})
	t.Run("folder not empty", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "keep.txt"), []byte("mine\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		res := c.want(t, 2, "checkout", "--git", repo, "--dir", dir)
		wantAll(t, "the error", res.stderr, "--dir "+dir+": not empty (keep.txt, ...)")
		if got := readFile(t, filepath.Join(dir, "keep.txt")); got != "mine\n" {
			t.Errorf("keep.txt = %q after a refused checkout", got)
		}
		if _, err := os.Stat(filepath.Join(dir, "app.txt")); err == nil {
			t.Error("a refused checkout wrote app.txt")
		}
	})
	t.Run("usage", func(t *testing.T) {
		wantAll(t, "the error", c.want(t, 2, "checkout", "--git", repo).stderr, "checkout needs --git and --dir")
		wantAll(t, "the error", c.want(t, 2, "checkout", "--git", "ftp://example.com/app.git", "--dir", t.TempDir()).stderr,
			`unsupported scheme "ftp"`)
	})
}
