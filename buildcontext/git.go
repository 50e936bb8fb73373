package buildcontext

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"
)

// localRef is where a ref outside refs/heads and refs/tags (refs/pull/1/head, refs/changes/..)
// or a bare commit is fetched to, so that it can be checked out.
const localRef = "refs/kiln/context"

// cloneGit clones a git:// context into a fresh work directory with go-git: in-process, like
// Kaniko, so the executor needs no git binary in its image.
func cloneGit(ctx context.Context, rest string, o Options) (string, error) {
	src, err := parseGitContext(rest, o.Git.PullMethod)
	if err != nil {
		return "", err
	}
	g := gitClone{src: src, opts: o.Git}
	g.takeURLCredentials()
	dir, err := workDir(o)
	if err != nil {
		return "", err
	}
	if err := g.into(ctx, dir); err != nil {
		return "", fmt.Errorf("git clone %s: %w", Redact(src.URL), err)
	}
	return dir, nil
}

// gitClone is one clone of a parsed source with the --git options.
type gitClone struct {
	src  gitSource
	opts GitOptions
}

// takeURLCredentials moves user info out of the URL ("git://user:token@host/repo") into the
// clone's credentials, unless --git or GIT_* credentials are set: the clone's .git/config,
// which a RUN can read and a COPY . can put into the image, then never holds the token.
func (g *gitClone) takeURLCredentials() {
	u, err := url.Parse(g.src.URL)
	if err != nil || u.User == nil {
		return
	}
	if g.opts.Auth == nil && g.opts.Username == "" && g.opts.Password == "" {
		g.opts.Username = u.User.Username()
		g.opts.Password, _ = u.User.Password()
	}
	u.User = nil
	g.src.URL = u.String()
}

func (g gitClone) auth() transport.AuthMethod {
	if g.opts.Auth != nil {
		return g.opts.Auth
	}
	if g.opts.Username == "" && g.opts.Password == "" {
		return nil
	}
	return &githttp.BasicAuth{Username: g.opts.Username, Password: g.opts.Password}
}

// into clones into dir and checks out what the source and options ask for.
func (g gitClone) into(ctx context.Context, dir string) error {
	ref, fetchRef, checkout, err := g.plan(ctx)
	if err != nil {
		return err
	}
	recurse := git.NoRecurseSubmodules
	if g.opts.RecurseSubmodules {
		recurse = git.DefaultSubmoduleRecursionDepth
	}
	repo, err := git.PlainCloneContext(ctx, dir, false, &git.CloneOptions{
		URL:               g.src.URL,
		Auth:              g.auth(),
		ReferenceName:     ref,
		SingleBranch:      g.opts.SingleBranch,
		Depth:             g.opts.Depth,
		RecurseSubmodules: recurse,
		InsecureSkipTLS:   g.opts.InsecureSkipTLS,
	})
	if err != nil {
		return err
	}
	if fetchRef == "" && checkout == "" {
		return nil
	}
	var target plumbing.Hash
	if fetchRef != "" {
		if target, err = g.fetch(ctx, repo, fetchRef); err != nil {
			return err
		}
	}
	if checkout != "" {
		target = plumbing.NewHash(checkout)
		if _, err := repo.CommitObject(target); errors.Is(err, plumbing.ErrObjectNotFound) {
			// Not on the cloned branch (or beyond --git depth): ask for the commit itself.
			if _, err := g.fetch(ctx, repo, checkout); err != nil {
				return fmt.Errorf("commit %s is not in the clone and could not be fetched: %w", checkout, err)
			}
		}
	}
	return g.checkout(ctx, repo, target)
}

// plan decides the ref to clone, a ref or commit to fetch afterwards, and the commit to check
// out. As Kaniko: --git branch wins over the URL's ref; a ref outside heads and tags is
// fetched after a clone of HEAD; a commit in either fragment is checked out last.
func (g gitClone) plan(ctx context.Context) (ref plumbing.ReferenceName, fetchRef, checkout string, err error) {
	ref = plumbing.HEAD
	switch r := g.src.Ref; {
	case r == "":
	case g.src.refIsCommit():
		checkout = r
	case plumbing.ReferenceName(r).IsBranch() || plumbing.ReferenceName(r).IsTag():
		ref = plumbing.ReferenceName(r)
	case strings.HasPrefix(r, "refs/"):
		fetchRef = r
	default:
		if ref, err = g.resolveName(ctx, r); err != nil {
			return "", "", "", err
		}
	}
	if g.opts.Branch != "" {
		if ref, err = g.resolveName(ctx, g.opts.Branch); err != nil {
			return "", "", "", fmt.Errorf("--git branch=%s: %w", g.opts.Branch, err)
		}
	}
	if g.src.Commit != "" {
		checkout = g.src.Commit
	}
	return ref, fetchRef, checkout, nil
}

// resolveName finds a bare name among the remote's branches, then its tags.
func (g gitClone) resolveName(ctx context.Context, name string) (plumbing.ReferenceName, error) {
	remote := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{g.src.URL}})
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: g.auth(), InsecureSkipTLS: g.opts.InsecureSkipTLS})
	if err != nil {
		return "", fmt.Errorf("listing the remote's refs: %w", err)
	}
	for _, want := range []plumbing.ReferenceName{plumbing.NewBranchReferenceName(name), plumbing.NewTagReferenceName(name)} {
		for _, r := range refs {
			if r.Name() == want {
				return want, nil
			}
		}
	}
	return "", fmt.Errorf("no branch or tag named %q in the repository", name)
}

// fetch brings what (a ref name or a commit SHA) into localRef and returns its commit.
func (g gitClone) fetch(ctx context.Context, repo *git.Repository, what string) (plumbing.Hash, error) {
	err := repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName:      "origin",
		Auth:            g.auth(),
		RefSpecs:        []config.RefSpec{config.RefSpec("+" + what + ":" + localRef)},
		InsecureSkipTLS: g.opts.InsecureSkipTLS,
		Tags:            git.NoTags,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return plumbing.ZeroHash, fmt.Errorf("fetching %s: %w", what, err)
	}
	r, err := repo.Reference(localRef, true)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("fetching %s: %w", what, err)
	}
	return r.Hash(), nil
}

// checkout moves the work tree to commit, submodules included when asked.
func (g gitClone) checkout(ctx context.Context, repo *git.Repository, commit plumbing.Hash) error {
	w, err := repo.Worktree()
	if err != nil {
		return err
	}
	if err := w.Checkout(&git.CheckoutOptions{Hash: commit, Force: true}); err != nil {
		return fmt.Errorf("checking out %s: %w", commit, err)
	}
	if !g.opts.RecurseSubmodules {
		return nil
	}
	subs, err := w.Submodules()
	if err != nil {
		return fmt.Errorf("submodules of %s: %w", commit, err)
	}
	if err := subs.UpdateContext(ctx, &git.SubmoduleUpdateOptions{Init: true, Auth: g.auth(), RecurseSubmodules: git.DefaultSubmoduleRecursionDepth}); err != nil {
		return fmt.Errorf("submodules of %s: %w", commit, err)
	}
	return nil
}
