package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPipelineGitContext(t *testing.T) {
	for _, tc := range []struct {
		repo, ref  string
		spec, pull string
		err        string
	}{
		{"https://git.example/team/app.git", "main", "git://git.example/team/app.git#main", "https", ""},
		{"https://git.example/team/app.git", "", "git://git.example/team/app.git", "https", ""},
		{"http://127.0.0.1:8080/app.git", "v1.0", "git://127.0.0.1:8080/app.git#v1.0", "http", ""},
		{"git://git.example/app.git", "refs/pull/7/head", "git://git.example/app.git#refs/pull/7/head", "https", ""},
		{"https://user:token@git.example/app.git", "", "git://user:token@git.example/app.git", "https", ""},
		{"ssh://git@git.example/app.git", "", "", "", `unsupported scheme "ssh"`},
		{"git@git.example:team/app.git", "", "", "", "not a URL with a host: use https://, http:// or git://HOST/PATH"},
		{"git.example/app.git", "", "", "", "not a URL with a host"},
		{"https:///app.git", "", "", "", "not a URL with a host"},
		{"://", "", "", "", "not a URL with a host"},
	} {
		spec, pull, err := gitContext(tc.repo, tc.ref)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("gitContext(%q, %q) error %v, want %q", tc.repo, tc.ref, err, tc.err)
			}
			continue
		}
		if err != nil || spec != tc.spec || pull != tc.pull {
			t.Errorf("gitContext(%q, %q) = %q, %q, %v; want %q, %q", tc.repo, tc.ref, spec, pull, err, tc.spec, tc.pull)
		}
	}
}

func TestPipelineAbsentOrEmpty(t *testing.T) {
	dir := t.TempDir()
	if err := absentOrEmpty(filepath.Join(dir, "absent")); err != nil {
		t.Errorf("absent: %v", err)
	}
	if err := absentOrEmpty(dir); err != nil {
		t.Errorf("empty: %v", err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := absentOrEmpty(dir); err == nil || !strings.Contains(err.Error(), "not empty (file, ...)") {
		t.Errorf("not empty: %v", err)
	}
	if err := absentOrEmpty(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a file: %v", err)
	}
}

func TestPipelineCheckoutCmdUsage(t *testing.T) {
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"checkout", "--dir", t.TempDir()}, "checkout needs --git and --dir"},
		{[]string{"checkout", "--git", "https://git.example/app.git"}, "checkout needs --git and --dir"},
		{[]string{"checkout", "--git", "ssh://git.example/app.git", "--dir", t.TempDir()}, `--git ssh://git.example/app.git: unsupported scheme "ssh"`},
		{[]string{"checkout", "--git", "https://git.example/app.git", "--dir", full}, "--dir " + full + ": not empty"},
		{[]string{"checkout", "--git", "https://git.example/app.git", "--dir", t.TempDir(), "extra"}, `unexpected argument "extra"`},
	} {
		if code, stdout, stderr := call(tc.args...); code != 2 || stdout != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("pipeline %q: exit code %d (want 2), stdout %q, stderr lacks %q:\n%s", tc.args, code, stdout, tc.want, stderr)
		}
	}
	// A token in the URL never reaches the output.
	code, _, stderr := call("checkout", "--git", "ssh://me:s3cret-token@git.example/app.git", "--dir", t.TempDir())
	if code != 2 || strings.Contains(stderr, "s3cret-token") || !strings.Contains(stderr, "git.example/app.git") {
		t.Errorf("checkout with credentials in an unsupported URL: exit code %d:\n%s", code, stderr)
	}
}
