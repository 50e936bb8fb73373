package buildcontext

import (
	"errors"
	"testing"
)

func TestParseGitRef(t *testing.T) {
	yes := true
	for _, c := range []struct {
		in   string
		want GitRef
	}{
		{"https://github.com/moby/buildkit.git", GitRef{Remote: "https://github.com/moby/buildkit.git"}},
		{"https://host/org/repo.git#v1.2:docs/./api/", GitRef{Remote: "https://host/org/repo.git", Ref: "v1.2", SubDir: "docs/api"}},
		{"http://host:8080/repo.git#main", GitRef{Remote: "http://host:8080/repo.git", Ref: "main"}},
		{"git://host/repo#refs/pull/1/head", GitRef{Remote: "git://host/repo", Ref: "refs/pull/1/head"}},
		{"git@github.com:moby/buildkit.git#v0.14.1:docs", GitRef{Remote: "git@github.com:moby/buildkit.git", Ref: "v0.14.1", SubDir: "docs", SSH: true, User: "git"}},
		{"ssh://deploy@host:2222/srv/repo.git", GitRef{Remote: "ssh://deploy@host:2222/srv/repo.git", SSH: true, User: "deploy"}},
		{"https://host/r.git?branch=dev&subdir=app&keep-git-dir&checksum=abc123",
			GitRef{Remote: "https://host/r.git", Ref: "refs/heads/dev", SubDir: "app", KeepGitDir: &yes, Checksum: "abc123"}},
		{"https://host/r.git?tag=v1", GitRef{Remote: "https://host/r.git", Ref: "refs/tags/v1"}},
		{"https://host/r.git?fetch-by-commit&mtime=checkout#main", GitRef{Remote: "https://host/r.git", Ref: "main"}},
	} {
		got, ok, err := ParseGitRef(c.in)
		if err != nil || !ok {
			t.Errorf("%s: ok %v, err %v", c.in, ok, err)
			continue
		}
		if got.Remote != c.want.Remote || got.Ref != c.want.Ref || got.SubDir != c.want.SubDir || got.SSH != c.want.SSH ||
			got.User != c.want.User || got.Checksum != c.want.Checksum || (got.KeepGitDir == nil) != (c.want.KeepGitDir == nil) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.in, got, c.want)
		}
	}
	for _, notGit := range []string{"https://host/file.tar.gz", "src/app", "./repo.git", "/abs/path", "ftp://host/x.git"} {
		if _, ok, err := ParseGitRef(notGit); ok || err != nil {
			t.Errorf("%s: taken as a Git source (ok %v, err %v)", notGit, ok, err)
		}
	}
	for _, bad := range []string{"https://host/r.git?branch=a&tag=b", "https://host/r.git?color=red", "https://host/r.git?ref=dev&ref=x#main", "https://host/r.git?ref=dev#main",
		"https://host/r.git?keep-git-dir=maybe", "https://host/r.git?mtime=commit"} {
		if _, ok, err := ParseGitRef(bad); !ok || err == nil {
			t.Errorf("%s: ok %v, err %v; want a Git source with an error", bad, ok, err)
		}
	}
}

func TestGitRefCheckCommit(t *testing.T) {
	r := GitRef{Remote: "https://h/r.git", Checksum: "BE1F38E"}
	if err := r.CheckCommit("be1f38e0000000000000000000000000000000000"); err != nil {
		t.Error(err)
	}
	if err := r.CheckCommit("0000000000000000000000000000000000000000"); !errors.Is(err, ErrChecksum) {
		t.Errorf("mismatch: %v", err)
	}
}
