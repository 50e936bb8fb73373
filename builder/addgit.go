package builder

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/kilnbuild/kiln/buildcontext"
	"github.com/kilnbuild/kiln/internal/copier"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// ADD of a Git repository, as BuildKit reads it (buildcontext.GitRef has the forms):
// `ADD https://host/org/repo.git#ref:subdir /dst` copies the checkout of that commit (or its
// sub-directory) to /dst as a directory, without .git unless --keep-git-dir (or the URL's
// keep-git-dir query) says so. Files are 0644, or 0755 when the repository marks them
// executable; directories 0755; all owned by root unless --chown. Submodules are checked out
// unless the URL says submodules=false. --checksum (or checksum=) is the commit or a prefix of
// it that the ref must resolve to. The ref is resolved once per build, first for the cache
// key (which holds the commit, so a new commit on a branch misses) and then for the clone.
//
// Credentials: https uses the --git/GIT_* credentials (WithGit) or, as BuildKit, a secret
// GIT_AUTH_TOKEN.<host> or GIT_AUTH_TOKEN (sent as x-access-token); ssh (git@host:repo.git,
// ssh://) uses the ssh agent "default" (--ssh default). Host keys are checked against
// $SSH_KNOWN_HOSTS or ~/.ssh/known_hosts when one exists, and, as BuildKit without known
// hosts, accepted otherwise.

// WithGit sets the credentials and TLS settings used to fetch Git sources (ADD and
// --build-context): Username, Password, Auth and InsecureSkipTLS are used; the clone options
// (Branch, Depth, ...) are decided by each source.
func WithGit(g buildcontext.GitOptions) Option { return func(o *options) { o.git = g } }

// gitCommits remembers the commit each Git source resolved to in this build.
type gitCommits struct {
	mu   sync.Mutex
	byID map[string]string
}

// gitCommit resolves a Git source's ref to its commit, once per build.
func (b *build) gitCommit(ctx context.Context, ref buildcontext.GitRef) (string, error) {
	id := ref.Remote + "#" + ref.Ref
	b.commits.mu.Lock()
	defer b.commits.mu.Unlock()
	if c, ok := b.commits.byID[id]; ok {
		return c, nil
	}
	opts, done, err := b.gitOptions(ref)
	if err != nil {
		return "", err
	}
	defer done()
	c, err := buildcontext.ResolveGit(ctx, ref.Remote, ref.Ref, opts)
	if err != nil {
		return "", err
	}
	if err := ref.CheckCommit(c); err != nil {
		return "", err
	}
	if b.commits.byID == nil {
		b.commits.byID = map[string]string{}
	}
	b.commits.byID[id] = c
	b.note(0, "Git source %s#%s is commit %s", buildcontext.Redact(ref.Remote), ref.Ref, c)
	return c, nil
}

// addOptions prepares what only ADD has: checksum, --unpack, and the Git sources it fetches.
func (b *build) addOptions(ctx context.Context, c *instructions.AddCommand) (copier.AddOptions, error) {
	o := copier.AddOptions{Checksum: c.Checksum, Chown: c.Chown != "", Unpack: c.Unpack}
	if c.KeepGitDir != nil {
		o.KeepGitDir = *c.KeepGitDir
	}
	git, err := b.gitSources(c)
	if err != nil || len(git) == 0 {
		return o, err
	}
	o.Checksum = "" // it is the commit of the Git source
	excludes, err := excludeMatcher(c.ExcludePatterns)
	if err != nil {
		return o, err
	}
	o.Fetch = func(src string) (copier.Fetched, bool, error) {
		ref, ok := git[src]
		if !ok {
			return copier.Fetched{}, false, nil
		}
		p, err := b.fetchGit(ctx, ref)
		return copier.Fetched{Path: p, Exclude: excludes}, true, err
	}
	return o, nil
}

// gitSources parses the Git sources of an ADD, with --keep-git-dir and --checksum folded in.
func (b *build) gitSources(c *instructions.AddCommand) (map[string]buildcontext.GitRef, error) {
	out := map[string]buildcontext.GitRef{}
	for _, src := range c.SourcePaths {
		ref, ok, err := buildcontext.ParseGitRef(src)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if ref, err = withAddFlags(ref, c); err != nil {
			return nil, err
		}
		out[src] = ref
	}
	if len(out) > 0 && c.Checksum != "" && len(c.SourcePaths) > 1 {
		return nil, errors.New("checksum can't be specified for multiple sources")
	}
	return out, nil
}

// withAddFlags applies ADD --keep-git-dir and --checksum to a Git source, refusing values
// that contradict its URL (as BuildKit does).
func withAddFlags(ref buildcontext.GitRef, c *instructions.AddCommand) (buildcontext.GitRef, error) {
	if c.KeepGitDir != nil {
		if ref.KeepGitDir != nil && *ref.KeepGitDir != *c.KeepGitDir {
			return ref, errors.New("inconsistent keep-git-dir configuration")
		}
		ref.KeepGitDir = c.KeepGitDir
	}
	if c.Checksum != "" {
		if ref.Checksum != "" && ref.Checksum != c.Checksum {
			return ref, fmt.Errorf("checksum mismatch %q != %q", c.Checksum, ref.Checksum)
		}
		ref.Checksum = c.Checksum
	}
	return ref, nil
}

// fetchGit checks out a Git source into the work directory and returns the path to copy: the
// checkout or its sub-directory. It is removed with the work directory's tmp.
func (b *build) fetchGit(ctx context.Context, ref buildcontext.GitRef) (string, error) {
	dir, err := os.MkdirTemp(filepath.Join(b.workDir, "tmp"), "git-")
	if err != nil {
		return "", err
	}
	b.gitDirs = append(b.gitDirs, dir)
	return b.checkoutGit(ctx, ref, filepath.Join(dir, "checkout"))
}

// checkoutGit checks out a Git source into checkout (absent or empty), as ADD copies it, and
// returns the path to copy: the checkout or its sub-directory.
func (b *build) checkoutGit(ctx context.Context, ref buildcontext.GitRef, checkout string) (string, error) {
	commit, err := b.gitCommit(ctx, ref)
	if err != nil {
		return "", err
	}
	opts, done, err := b.gitOptions(ref)
	if err != nil {
		return "", err
	}
	defer done()
	opts.RecurseSubmodules = ref.Submodules == nil || *ref.Submodules
	if err := buildcontext.FetchGit(ctx, ref.Remote, ref.Ref, commit, checkout, opts); err != nil {
		return "", err
	}
	if ref.KeepGitDir == nil || !*ref.KeepGitDir {
		if err := os.RemoveAll(filepath.Join(checkout, ".git")); err != nil {
			return "", err
		}
	}
	if err := gitModes(checkout); err != nil {
		return "", err
	}
	return gitSubDir(checkout, ref.SubDir)
}

// gitSubDir resolves the source's sub-directory inside the checkout.
func gitSubDir(checkout, sub string) (string, error) {
	if sub == "" {
		return checkout, nil
	}
	p, err := securejoin.SecureJoin(checkout, sub)
	if err != nil {
		return "", err
	}
	if _, err := os.Lstat(p); err != nil {
		return "", fmt.Errorf("sub-directory %s is not in the repository", sub)
	}
	return p, nil
}

// gitModes gives the work tree the modes a checkout has under BuildKit: files 0644, or 0755
// when executable; directories 0755. A kept .git is left as git wrote it.
func gitModes(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" && p != dir {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil || fi.Mode()&fs.ModeSymlink != 0 {
			return err
		}
		mode := fs.FileMode(0o644)
		if fi.IsDir() || fi.Mode()&0o111 != 0 {
			mode = 0o755
		}
		return os.Chmod(p, mode)
	})
}

// excludeMatcher turns --exclude patterns into a test of paths relative to a source.
func excludeMatcher(patterns []string) (func(string) bool, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	var req copier.Request
	if err := withExcludes(&req, patterns); err != nil {
		return nil, err
	}
	return req.Exclude, nil
}

// gitOptions are the fetch options of one Git source: the build's TLS setting and
// credentials for its host. done releases an ssh agent connection.
func (b *build) gitOptions(ref buildcontext.GitRef) (buildcontext.GitOptions, func(), error) {
	o := buildcontext.GitOptions{InsecureSkipTLS: b.o.git.InsecureSkipTLS, Username: b.o.git.Username,
		Password: b.o.git.Password, Auth: b.o.git.Auth}
	if ref.SSH {
		auth, done, err := b.sshAuth(ref)
		o.Auth = auth
		return o, done, err
	}
	if token, ok := b.gitToken(ref.Remote); ok && o.Auth == nil && o.Username == "" {
		o.Auth = &githttp.BasicAuth{Username: "x-access-token", Password: token}
	}
	return o, func() {}, nil
}

// gitToken is BuildKit's GIT_AUTH_TOKEN.<host> secret, or GIT_AUTH_TOKEN.
func (b *build) gitToken(remote string) (string, bool) {
	host := ""
	if u, err := url.Parse(remote); err == nil {
		host = u.Hostname()
	}
	for _, id := range []string{"GIT_AUTH_TOKEN." + host, "GIT_AUTH_TOKEN"} {
		if s, ok := b.o.secrets[id]; ok {
			if v, err := s.value(); err == nil {
				return strings.TrimSpace(string(v)), true
			}
		}
	}
	return "", false
}

// sshAuth signs with the keys of the ssh agent "default" (--ssh default).
func (b *build) sshAuth(ref buildcontext.GitRef) (transport.AuthMethod, func(), error) {
	a, ok := b.o.ssh["default"]
	if !ok {
		return nil, func() {}, fmt.Errorf("%s is fetched over ssh, which needs an ssh agent: give --ssh default (or --ssh default=SOCKET|KEYFILE)", buildcontext.Redact(ref.Remote))
	}
	signers, done, err := agentSigners(a)
	if err != nil {
		return nil, done, err
	}
	auth := &gitssh.PublicKeysCallback{User: ref.User, Callback: func() ([]ssh.Signer, error) { return signers, nil }}
	auth.HostKeyCallback = b.hostKeys()
	return auth, done, nil
}

// agentSigners returns the keys an SSHAgent offers: the agent's behind a socket (whose
// connection done closes), or those of its key files.
func agentSigners(a SSHAgent) ([]ssh.Signer, func(), error) {
	if len(a.Paths) == 1 {
		if fi, err := os.Stat(a.Paths[0]); err == nil && fi.Mode()&os.ModeSocket != 0 {
			conn, err := net.Dial("unix", a.Paths[0])
			if err != nil {
				return nil, func() {}, fmt.Errorf("ssh agent %s: %w", a.ID, err)
			}
			s, err := agent.NewClient(conn).Signers()
			return s, func() { conn.Close() }, err
		}
	}
	keyring := agent.NewKeyring()
	for _, p := range a.Paths {
		if err := addKey(keyring, p); err != nil {
			return nil, func() {}, fmt.Errorf("ssh agent %s: %w", a.ID, err)
		}
	}
	s, err := keyring.Signers()
	return s, func() {}, err
}

// hostKeys checks host keys against known_hosts where there is one, and accepts any
// otherwise (BuildKit's behaviour when no known hosts are given), with a warning.
func (b *build) hostKeys() ssh.HostKeyCallback {
	if cb, err := gitssh.NewKnownHostsCallback(); err == nil {
		return cb
	}
	b.warn("no ssh known_hosts file ($SSH_KNOWN_HOSTS, ~/.ssh/known_hosts): the host keys of ssh Git sources are not checked")
	return ssh.InsecureIgnoreHostKey() //nolint:gosec // BuildKit's default without known hosts
}

// removeGitDirs removes the checkouts of this build's Git sources.
func (b *build) removeGitDirs() {
	for _, d := range b.gitDirs {
		os.RemoveAll(d)
	}
	b.gitDirs = nil
}
