package buildcontext

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// GitRef is a Git source as BuildKit reads it in ADD and --build-context:
//
//	https://host/org/repo.git#ref:subdir   (http:// too; the path must end in .git)
//	git://host/org/repo#ref                 ssh://user@host[:port]/org/repo.git#ref
//	user@host:org/repo.git#ref              (scp-like, over ssh)
//
// The fragment is REF[:SUBDIR]; a query may say ref=, branch=, tag=, subdir=, checksum= (or
// commit=: the commit, or a prefix of it, that the ref must resolve to), keep-git-dir[=bool]
// and submodules[=bool] (fetch-by-commit is accepted, and mtime=checkout, the only mtime
// Kiln gives). A branch= or tag= becomes refs/heads/... or refs/tags/....
type GitRef struct {
	Remote     string // what is cloned: the URL without fragment and query
	Ref        string // a branch, tag, full ref or commit; "" for the default branch
	SubDir     string // a directory inside the repository, "" for all of it
	Checksum   string // the commit, or a prefix of it, that Ref must resolve to
	KeepGitDir *bool  // keep .git (the query's keep-git-dir); nil: not said
	Submodules *bool  // check out submodules (the query's submodules); nil: not said (yes)
	SSH        bool   // fetched over ssh (ssh:// or scp-like)
	User       string // the ssh user ("git" when none is written)
}

// scpLike is BuildKit's user@host:path form.
var scpLike = regexp.MustCompile(`^([a-zA-Z0-9-_]+)@([a-zA-Z0-9-.]+):(.*?)(?:\?(.*?))?(?:#(.*))?$`)

// ParseGitRef reports whether s is a Git source in one of BuildKit's forms, and parses it.
// Anything else (a local path, an http(s) URL whose path does not end in .git) gives ok false
// and no error.
func ParseGitRef(s string) (ref GitRef, ok bool, err error) {
	if m := scpLike.FindStringSubmatch(s); m != nil && !strings.Contains(s, "://") {
		ref = GitRef{Remote: m[1] + "@" + m[2] + ":" + m[3], SSH: true, User: m[1]}
		q, err := url.ParseQuery(m[4])
		if err != nil {
			return GitRef{}, true, fmt.Errorf("git source %s: bad query: %w", s, err)
		}
		return ref, true, ref.apply(m[5], q)
	}
	scheme, _, found := strings.Cut(s, "://")
	if !found {
		return GitRef{}, false, nil
	}
	switch strings.ToLower(scheme) {
	case "git", "ssh", "http", "https":
	default:
		return GitRef{}, false, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return GitRef{}, false, nil
	}
	scheme = strings.ToLower(u.Scheme)
	if (scheme == "http" || scheme == "https") && !strings.HasSuffix(u.Path, ".git") {
		return GitRef{}, false, nil // a plain download
	}
	ref = GitRef{SSH: scheme == "ssh", User: u.User.Username()}
	fragment, query := u.Fragment, u.Query()
	u.Fragment, u.RawFragment, u.RawQuery, u.ForceQuery = "", "", "", false
	ref.Remote = u.String()
	return ref, true, ref.apply(fragment, query)
}

// apply reads the fragment and the query into r.
func (r *GitRef) apply(fragment string, q url.Values) error {
	if r.User == "" && r.SSH {
		r.User = "git"
	}
	if fragment != "" {
		ref, sub, _ := strings.Cut(fragment, ":")
		r.Ref, r.SubDir = ref, cleanSubDir(sub)
	}
	var branch, tag string
	for k, vs := range q {
		if len(vs) > 1 {
			return fmt.Errorf("git source %s: query %q given more than once", Redact(r.Remote), k)
		}
		v := vs[0]
		var err error
		switch k {
		case "ref":
			err = r.set(&r.Ref, v, "ref")
		case "branch":
			branch = v
		case "tag":
			tag = v
		case "subdir":
			err = r.set(&r.SubDir, cleanSubDir(v), "subdir")
		case "checksum", "commit":
			r.Checksum = v
		case "keep-git-dir":
			r.KeepGitDir, err = queryBool(k, v)
		case "submodules":
			r.Submodules, err = queryBool(k, v)
		case "fetch-by-commit":
			_, err = queryBool(k, v) // Kiln always checks out the commit it resolved
		case "mtime":
			if v != "checkout" {
				err = fmt.Errorf("mtime=%s is not supported: files get the time of the checkout (mtime=checkout)", v)
			}
		default:
			err = fmt.Errorf("unknown query %q (known: ref, branch, tag, subdir, checksum, keep-git-dir, submodules, fetch-by-commit, mtime)", k)
		}
		if err != nil {
			return fmt.Errorf("git source %s: %w", Redact(r.Remote), err)
		}
	}
	return r.refFromQuery(branch, tag)
}

// refFromQuery applies branch= and tag=.
func (r *GitRef) refFromQuery(branch, tag string) error {
	switch {
	case branch != "" && tag != "":
		return fmt.Errorf("git source %s: branch= and tag= together", Redact(r.Remote))
	case branch != "":
		return r.set(&r.Ref, withPrefix(branch, "refs/heads/"), "ref")
	case tag != "":
		return r.set(&r.Ref, withPrefix(tag, "refs/tags/"), "ref")
	}
	return nil
}

// set sets a field, refusing two different values for it.
func (r *GitRef) set(field *string, v, what string) error {
	if *field != "" && *field != v {
		return fmt.Errorf("%s given twice: %q and %q", what, *field, v)
	}
	*field = v
	return nil
}

func withPrefix(s, prefix string) string {
	if strings.HasPrefix(s, prefix) {
		return s
	}
	return prefix + s
}

// cleanSubDir makes a sub-directory relative and clean ("" for the root).
func cleanSubDir(s string) string {
	return strings.TrimPrefix(path.Join("/", s), "/")
}

// queryBool reads keep-git-dir and submodules, where a key without a value means true.
func queryBool(key, v string) (*bool, error) {
	if v == "" {
		t := true
		return &t, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return nil, fmt.Errorf("%s=%s: want true or false", key, v)
	}
	return &b, nil
}

// ErrChecksum says a Git source's commit is not the one its checksum names.
var ErrChecksum = errors.New("checksum mismatch")

// CheckCommit reports whether commit matches the source's checksum (a prefix of it).
func (r GitRef) CheckCommit(commit string) error {
	if r.Checksum == "" || strings.HasPrefix(commit, strings.ToLower(r.Checksum)) {
		return nil
	}
	return fmt.Errorf("%w: %s#%s is commit %s, the checksum says %s", ErrChecksum, Redact(r.Remote), r.Ref, commit, r.Checksum)
}
