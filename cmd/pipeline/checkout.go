package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/kilnbuild/kiln/buildcontext"
	"github.com/spf13/pflag"
)

// checkoutCmd clones a repository into a folder: the first step of a rendered Job, which has no
// CI server to check the code out for it. It uses the executor's git support (go-git), so the
// executor image needs no git binary.
func checkoutCmd(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("pipeline checkout", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	repo := fs.String("git", "", "Repository URL (https://, http:// or git://)")
	ref := fs.String("ref", "", "Branch, tag or commit to check out (default: the remote's HEAD)")
	dir := fs.String("dir", "", "Folder to clone into (absent or empty)")
	depth := fs.Int("depth", 1, "History depth to fetch (0: all)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *repo == "" || *dir == "" {
		fmt.Fprintln(stderr, "Error: checkout needs --git and --dir")
		return 2
	}
	spec, pull, err := gitContext(*repo, *ref)
	if err != nil {
		fmt.Fprintf(stderr, "Error: --git %s: %v\n", buildcontext.Redact(*repo), err)
		return 2
	}
	if err := absentOrEmpty(*dir); err != nil {
		fmt.Fprintf(stderr, "Error: --dir %s: %v\n", *dir, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	opts := buildcontext.Options{WorkDir: *dir, Git: buildcontext.GitOptions{
		PullMethod: pull, Depth: *depth,
		Username: os.Getenv("GIT_USERNAME"), Password: os.Getenv("GIT_PASSWORD"),
	}}
	if tok := os.Getenv("GIT_TOKEN"); tok != "" && opts.Git.Username == "" {
		opts.Git.Username = tok
	}
	if _, err := buildcontext.Prepare(ctx, spec, opts); err != nil {
		// Prepare names the executor's --context flag, which this command does not have.
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		fmt.Fprintf(stderr, "Error: checkout %s%s: %v\n", buildcontext.Redact(*repo), refSuffix(*ref), err)
		return 1
	}
	fmt.Fprintf(stdout, "Checked out %s%s into %s\n", buildcontext.Redact(*repo), refSuffix(*ref), *dir)
	return 0
}

// gitContext turns a repository URL and ref into the executor's git:// context form and the
// scheme it is fetched over.
func gitContext(repo, ref string) (spec, pull string, err error) {
	u, err := url.Parse(repo)
	if err != nil || u.Host == "" {
		// Also an SSH remote in scp form (git@host:team/app.git), which go-git over HTTP cannot fetch.
		return "", "", errors.New("not a URL with a host: use https://, http:// or git://HOST/PATH")
	}
	switch u.Scheme {
	case "https", "git":
		pull = "https"
	case "http":
		pull = "http"
	default:
		return "", "", fmt.Errorf("unsupported scheme %q: use https://, http:// or git://", u.Scheme)
	}
	rest := strings.TrimPrefix(repo, u.Scheme+"://")
	spec = "git://" + rest
	if ref != "" {
		spec += "#" + ref
	}
	return spec, pull, nil
}

// absentOrEmpty refuses a folder that holds anything: a checkout never mixes into other files.
func absentOrEmpty(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case len(entries) > 0:
		return fmt.Errorf("not empty (%s, ...): checkout clones into an absent or empty folder", entries[0].Name())
	}
	return nil
}

func refSuffix(ref string) string {
	if ref == "" {
		return ""
	}
	return "#" + ref
}
