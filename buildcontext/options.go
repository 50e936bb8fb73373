package buildcontext

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

// Options says how Prepare fetches and where it unpacks a context.
type Options struct {
	// Git configures git:// contexts (Kaniko's --git flag and GIT_* variables).
	Git GitOptions
	// Stdin is read for tar://stdin.
	Stdin io.Reader
	// HTTPClient fetches http(s) archives; http.DefaultClient if nil.
	HTTPClient *http.Client
	// SubPath is --context-sub-path: the build uses this directory inside the context.
	SubPath string
	// WorkDir is where archives are unpacked and repositories cloned (in pod mode
	// <kanikoDir>/buildcontext, as Kaniko). It must be absent or empty. If WorkDir is "",
	// Prepare makes a fresh temporary directory that the caller owns.
	WorkDir string
}

// GitOptions configures how a git:// context is cloned.
type GitOptions struct {
	// Branch is a branch or tag name to check out (--git branch=NAME).
	Branch string
	// SingleBranch fetches only the wanted branch.
	SingleBranch bool
	// RecurseSubmodules checks out submodules too.
	RecurseSubmodules bool
	// InsecureSkipTLS accepts any server certificate.
	InsecureSkipTLS bool
	// Depth limits the history fetched (0: all of it).
	Depth int
	// PullMethod is "https" (the default) or "http": the scheme a git:// URL is fetched
	// over (Kaniko's GIT_PULL_METHOD).
	PullMethod string
	// Username and Password authenticate over http(s) (Kaniko's GIT_USERNAME,
	// GIT_PASSWORD, or GIT_TOKEN as the username).
	Username, Password string
	// Auth, when set, is used instead of Username and Password: an ssh agent's keys for an
	// ssh URL (ADD git@host:repo.git), or a token for one host.
	Auth transport.AuthMethod
}

// ParseGitFlag parses the value of --git: comma-separated key=value pairs with keys branch,
// single-branch, recurse-submodules, insecure-skip-tls and depth. Kaniko repeats the flag
// with one pair each; joining those with commas gives the same result.
func ParseGitFlag(s string) (GitOptions, error) {
	var g GitOptions
	if err := g.set(s); err != nil {
		return GitOptions{}, err
	}
	return g, nil
}

// set applies the pairs in s to g, so several --git values can be layered.
func (g *GitOptions) set(s string) error {
	for _, pair := range strings.Split(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		key, value, ok := strings.Cut(pair, "=")
		if !ok {
			return fmt.Errorf("--git %q: %q is not in the key=value format", s, pair)
		}
		var err error
		switch key {
		case "branch":
			g.Branch = value
		case "single-branch":
			g.SingleBranch, err = strconv.ParseBool(value)
		case "recurse-submodules":
			g.RecurseSubmodules, err = strconv.ParseBool(value)
		case "insecure-skip-tls":
			g.InsecureSkipTLS, err = strconv.ParseBool(value)
		case "depth":
			g.Depth, err = strconv.Atoi(value)
			if err == nil && g.Depth < 0 {
				err = fmt.Errorf("must not be negative")
			}
		default:
			return fmt.Errorf("--git %q: unknown key %q (known: branch, single-branch, recurse-submodules, insecure-skip-tls, depth)", s, key)
		}
		if err != nil {
			return fmt.Errorf("--git %q: bad value %q for key %q: %v", s, value, key, err)
		}
	}
	return nil
}
