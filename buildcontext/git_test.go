package buildcontext

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/testenv/gitserver"
)

// gitFixture is a served repository with branches main and dev, a tag v1, a pull-request ref
// and a commit reachable from no branch or tag except that ref.
type gitFixture struct {
	srv                      *gitserver.Server
	first, second, dev, pull string
}

func newGitFixture(t *testing.T) gitFixture {
	t.Helper()
	srv := gitserver.Serve(t, true)
	repo := gitserver.NewRepo(t)
	f := gitFixture{srv: srv}
	f.first = gitserver.Commit(t, repo, "first", map[string]string{"Dockerfile": "FROM busybox\n", "version": "1"})
	gitserver.Git(t, repo, "tag", "v1")
	f.second = gitserver.Commit(t, repo, "second", map[string]string{"version": "2"})
	gitserver.Git(t, repo, "checkout", "-q", "-b", "dev")
	f.dev = gitserver.Commit(t, repo, "dev", map[string]string{"version": "dev", "sub/Dockerfile": "FROM scratch\n"})
	gitserver.Git(t, repo, "checkout", "-q", "-b", "pr", "main")
	f.pull = gitserver.Commit(t, repo, "pr", map[string]string{"version": "pr"})
	gitserver.Git(t, repo, "checkout", "-q", "main")
	bare := srv.Publish(t, repo, "app.git")
	gitserver.Git(t, bare, "update-ref", "refs/pull/1/head", f.pull)
	gitserver.Git(t, bare, "branch", "-D", "pr")
	return f
}

func (f gitFixture) prepare(t *testing.T, fragment string, g GitOptions) (string, error) {
	t.Helper()
	g.InsecureSkipTLS = true
	o := work(t)
	o.Git = g
	return Prepare(context.Background(), "git://"+f.srv.Host+"/app.git"+fragment, o)
}

func TestPrepareGit(t *testing.T) {
	f := newGitFixture(t)
	for _, c := range []struct {
		name, fragment string
		opts           GitOptions
		version        string
	}{
		{"default branch", "", GitOptions{}, "2"},
		{"branch ref", "#refs/heads/dev", GitOptions{}, "dev"},
		{"single branch", "#refs/heads/dev", GitOptions{SingleBranch: true}, "dev"},
		{"bare branch name", "#dev", GitOptions{}, "dev"},
		{"tag ref", "#refs/tags/v1", GitOptions{}, "1"},
		{"commit", "#" + f.first, GitOptions{}, "1"},
		{"pull ref", "#refs/pull/1/head", GitOptions{}, "pr"},
		{"ref then commit", "#refs/heads/main#" + f.first, GitOptions{}, "1"},
		{"--git branch", "", GitOptions{Branch: "dev"}, "dev"},
		{"--git branch names a tag", "", GitOptions{Branch: "v1"}, "1"},
		{"shallow", "", GitOptions{Depth: 1, SingleBranch: true}, "2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := f.prepare(t, c.fragment, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			wantFile(t, filepath.Join(got, "version"), c.version)
			wantFile(t, filepath.Join(got, "Dockerfile"), "FROM busybox\n")
		})
	}
}

func TestPrepareGitSubPathAndHTTP(t *testing.T) {
	srv := gitserver.Serve(t, false)
	repo := gitserver.NewRepo(t)
	gitserver.Commit(t, repo, "one", map[string]string{"svc/Dockerfile": "FROM scratch\n"})
	srv.Publish(t, repo, "mono.git")
	o := work(t)
	o.Git.PullMethod = "http"
	o.SubPath = "svc"
	got, err := Prepare(context.Background(), "git://"+srv.Host+"/mono.git", o)
	if err != nil {
		t.Fatal(err)
	}
	if got != filepath.Join(o.WorkDir, "svc") {
		t.Fatalf("got %s, want %s/svc", got, o.WorkDir)
	}
	wantFile(t, filepath.Join(got, "Dockerfile"), "FROM scratch\n")
}

func TestPrepareGitErrors(t *testing.T) {
	f := newGitFixture(t)
	for _, c := range []struct {
		name, fragment string
		opts           GitOptions
		want           string
	}{
		{"unknown branch", "#nope", GitOptions{}, `no branch or tag named "nope"`},
		{"unknown --git branch", "", GitOptions{Branch: "nope"}, `--git branch=nope`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.prepare(t, c.fragment, c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
	o := work(t)
	o.Git.InsecureSkipTLS = true
	_, err := Prepare(context.Background(), "git://"+f.srv.Host+"/missing.git", o)
	if want := "git clone https://" + f.srv.Host + "/missing.git"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("unknown repository: got %v, want an error containing %q", err, want)
	}
	// The server's certificate is self-signed: without insecure-skip-tls it is refused.
	_, err = Prepare(context.Background(), "git://"+f.srv.Host+"/app.git", work(t))
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted server: got %v, want a certificate error", err)
	}
}

// Plain http: go-git does not apply insecure-skip-tls to submodules (nor does Kaniko).
func TestPrepareGitSubmodules(t *testing.T) {
	srv := gitserver.Serve(t, false)
	lib := gitserver.NewRepo(t)
	libSHA := gitserver.Commit(t, lib, "lib", map[string]string{"lib.txt": "library"})
	srv.Publish(t, lib, "lib.git")
	app := gitserver.NewRepo(t)
	// A relative submodule URL resolves against the superproject's own URL.
	writeFiles(t, app, map[string]string{".gitmodules": "[submodule \"lib\"]\n\tpath = vendor/lib\n\turl = ../lib.git\n"})
	gitserver.Git(t, app, "update-index", "--add", "--cacheinfo", "160000,"+libSHA+",vendor/lib")
	gitserver.Git(t, app, "add", ".gitmodules")
	gitserver.Git(t, app, "commit", "-q", "-m", "app")
	srv.Publish(t, app, "app.git")

	spec := "git://" + srv.Host + "/app.git"
	o := work(t)
	o.Git = GitOptions{PullMethod: "http", RecurseSubmodules: true}
	got, err := Prepare(context.Background(), spec, o)
	if err != nil {
		t.Fatal(err)
	}
	wantFile(t, filepath.Join(got, "vendor/lib/lib.txt"), "library")

	o = work(t)
	o.Git = GitOptions{PullMethod: "http"}
	got, err = Prepare(context.Background(), spec, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(got, "vendor/lib/lib.txt")); err == nil {
		t.Fatal("submodule checked out without recurse-submodules")
	}
}
