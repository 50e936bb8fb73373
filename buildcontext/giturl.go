package buildcontext

import (
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
)

// gitSource is a parsed git:// context: git://HOST/PATH[#REF[#COMMIT]], as Kaniko reads it.
type gitSource struct {
	// URL is what is cloned: the pull method's scheme, then HOST/PATH.
	URL string
	// Ref is the first fragment: a full ref name (refs/heads/x, refs/tags/v1,
	// refs/pull/1/head), a commit SHA, or a bare branch or tag name.
	Ref string
	// Commit is the second fragment: a commit checked out after fetching Ref.
	Commit string
}

// parseGitContext parses what follows "git://". pullMethod is "https" (the default for "")
// or "http".
func parseGitContext(rest, pullMethod string) (gitSource, error) {
	switch pullMethod {
	case "":
		pullMethod = "https"
	case "http", "https":
	default:
		return gitSource{}, fmt.Errorf("GIT_PULL_METHOD=%s: must be https or http", shownValue(pullMethod))
	}
	parts := strings.Split(rest, "#")
	if len(parts) > 3 {
		return gitSource{}, fmt.Errorf("too many '#' fragments: want git://HOST/PATH[#REF[#COMMIT]]")
	}
	repo := parts[0]
	host, _, _ := strings.Cut(repo, "/")
	if host == "" || strings.HasSuffix(host, "@") {
		return gitSource{}, fmt.Errorf("no host in the repository address %q: want git://HOST/PATH",
			strings.TrimPrefix(Redact("git://"+repo), "git://"))
	}
	s := gitSource{URL: pullMethod + "://" + repo}
	if len(parts) > 1 {
		s.Ref = parts[1]
		if s.Ref == "" {
			return gitSource{}, fmt.Errorf("empty ref after '#'")
		}
	}
	if len(parts) > 2 {
		s.Commit = parts[2]
		if !plumbing.IsHash(s.Commit) {
			return gitSource{}, fmt.Errorf("%q after the second '#' is not a full commit SHA", s.Commit)
		}
	}
	return s, nil
}

// refIsCommit reports whether Ref names a commit rather than a ref.
func (s gitSource) refIsCommit() bool { return plumbing.IsHash(s.Ref) }

// shownValue is an environment value as an error may quote it: a short lowercase word (a
// method name such as ssh) as it is, anything else only by its length, since a mistyped value
// may be a credential pasted into the wrong variable.
func shownValue(v string) string {
	if len(v) <= 8 && strings.Trim(v, "abcdefghijklmnopqrstuvwxyz") == "" {
		return v
	}
	return fmt.Sprintf("(a value of %d bytes)", len(v))
}
