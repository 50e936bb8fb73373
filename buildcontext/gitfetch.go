package buildcontext

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/memory"
)

// ResolveGit asks the remote at url which commit ref names: the default branch for "",
// a full ref (refs/heads/x, refs/tags/v1, refs/pull/1/head), or a bare branch or tag name
// (branches first). A full commit SHA is returned as it is. A tag names the commit it points
// at. Nothing is cloned.
func ResolveGit(ctx context.Context, url, ref string, o GitOptions) (string, error) {
	if plumbing.IsHash(ref) {
		return strings.ToLower(ref), nil
	}
	remote := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{url}})
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: gitClone{opts: o}.auth(),
		InsecureSkipTLS: o.InsecureSkipTLS, PeelingOption: git.AppendPeeled})
	if err != nil {
		return "", fmt.Errorf("listing the refs of %s: %w", Redact(url), err)
	}
	byName := map[plumbing.ReferenceName]*plumbing.Reference{}
	for _, r := range refs {
		byName[r.Name()] = r
	}
	for _, name := range candidates(ref) {
		if h, ok := commitOf(byName, name); ok {
			return h, nil
		}
	}
	if ref == "" {
		return "", fmt.Errorf("%s advertises no HEAD", Redact(url))
	}
	return "", fmt.Errorf("no branch or tag named %q in %s", ref, Redact(url))
}

// candidates are the ref names a ref may stand for, in the order they are tried.
func candidates(ref string) []plumbing.ReferenceName {
	switch {
	case ref == "":
		return []plumbing.ReferenceName{plumbing.HEAD}
	case strings.HasPrefix(ref, "refs/"):
		return []plumbing.ReferenceName{plumbing.ReferenceName(ref)}
	}
	return []plumbing.ReferenceName{plumbing.NewBranchReferenceName(ref), plumbing.NewTagReferenceName(ref)}
}

// commitOf finds the commit a listed ref points at: through a symbolic ref, and past an
// annotated tag (its peeled "^{}" entry).
func commitOf(refs map[plumbing.ReferenceName]*plumbing.Reference, name plumbing.ReferenceName) (string, bool) {
	for range 5 {
		r, ok := refs[name]
		if !ok {
			return "", false
		}
		if r.Type() == plumbing.SymbolicReference {
			name = r.Target()
			continue
		}
		if peeled, ok := refs[name+"^{}"]; ok {
			return peeled.Hash().String(), true
		}
		return r.Hash().String(), true
	}
	return "", false
}

// FetchGit clones url into dir (absent or empty) and checks out commit, fetching it through
// ref (as ResolveGit read it; "" for the default branch). It fails when the commit cannot be
// reached, e.g. after the branch was force-pushed since ResolveGit. Submodules are checked out
// when o.RecurseSubmodules is set; o.Branch and o.Depth are not used.
func FetchGit(ctx context.Context, url, ref, commit, dir string, o GitOptions) error {
	o.Branch, o.Depth = "", 0
	o.SingleBranch = ref != "" && !plumbing.IsHash(ref)
	src := gitSource{URL: url, Ref: ref, Commit: commit}
	if plumbing.IsHash(ref) {
		src.Ref = ""
	}
	if err := (gitClone{src: src, opts: o}).into(ctx, dir); err != nil {
		return fmt.Errorf("git clone %s: %w", Redact(url), err)
	}
	repo, err := git.PlainOpen(dir)
	if err != nil {
		return err
	}
	head, err := repo.Head()
	if err != nil {
		return err
	}
	if got := head.Hash().String(); got != commit {
		return fmt.Errorf("git clone %s: checked out %s, want %s", Redact(url), got, commit)
	}
	return nil
}
