package buildcontext

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// supportedKinds is named in the error for an unknown --context prefix.
const supportedKinds = "dir://, tar://, https://, http://, git://, or a plain directory path"

// azureBlobHosts are the host suffixes of Azure blob storage, which Kaniko reads with the Azure
// SDK rather than as a plain https archive.
var azureBlobHosts = [...]string{".blob.core.windows.net", ".blob.core.chinacloudapi.cn", ".blob.core.cloudapi.de", ".blob.core.usgovcloudapi.net"}

// Prepare makes the context named by spec (the --context value) available as a local directory
// and returns that directory, already joined with o.SubPath. Directories are used in place;
// everything else is unpacked or cloned into o.WorkDir.
func Prepare(ctx context.Context, spec string, o Options) (string, error) {
	dir, err := fetch(ctx, spec, o)
	if err != nil {
		return "", fmt.Errorf("--context=%s: %w", Redact(spec), err)
	}
	return subDir(dir, o.SubPath)
}

// fetch dispatches on the context's prefix.
func fetch(ctx context.Context, spec string, o Options) (string, error) {
	scheme, rest, ok := strings.Cut(spec, "://")
	if !ok {
		return localDir(spec)
	}
	switch scheme {
	case "dir":
		return localDir(rest)
	case "tar":
		if rest == "stdin" {
			return unpackStdin(ctx, o)
		}
		return unpackFile(ctx, rest, o)
	case "http", "https":
		if isAzureBlob(spec) {
			return "", unsupported("Azure blob storage")
		}
		return unpackURL(ctx, spec, o)
	case "git":
		return cloneGit(ctx, rest, o)
	case "gs":
		return "", unsupported("gs:// (Google Cloud Storage)")
	case "s3":
		return "", unsupported("s3:// (Amazon S3)")
	}
	return "", fmt.Errorf("unknown context prefix %q: use %s", scheme+"://", supportedKinds)
}

func unsupported(kind string) error {
	return fmt.Errorf("context kind %s is not supported in this build; use %s", kind, supportedKinds)
}

func isAzureBlob(spec string) bool {
	u, err := url.Parse(spec)
	if err != nil {
		return false
	}
	host := strings.ToLower(u.Hostname())
	for _, suffix := range azureBlobHosts {
		if strings.HasSuffix(host, suffix) {
			return true
		}
	}
	return false
}

// localDir checks that path is a directory and returns it absolute.
func localDir(path string) (string, error) {
	if path == "" {
		return "", errors.New("empty directory path")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%s is not a directory", path)
	}
	return filepath.Abs(path)
}

// subDir resolves sub inside dir; symlinks in sub are resolved as if dir were the root, so a
// link in an unpacked archive cannot lead the build outside its context.
func subDir(dir, sub string) (string, error) {
	if sub == "" {
		return dir, nil
	}
	p, err := securejoin.SecureJoin(dir, sub)
	if err != nil {
		return "", fmt.Errorf("--context-sub-path=%s: %w", sub, err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("--context-sub-path=%s: not in the context %s: %w", sub, dir, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("--context-sub-path=%s: %s is not a directory", sub, p)
	}
	return p, nil
}

// workDir returns the empty directory an archive or clone goes into.
func workDir(o Options) (string, error) {
	if o.WorkDir == "" {
		return os.MkdirTemp("", "kiln-context-")
	}
	if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
		return "", fmt.Errorf("build context directory: %w", err)
	}
	entries, err := os.ReadDir(o.WorkDir)
	if err != nil {
		return "", fmt.Errorf("build context directory: %w", err)
	}
	if len(entries) > 0 {
		return "", fmt.Errorf("build context directory %s is not empty (a previous build's context?); remove it first", o.WorkDir)
	}
	return filepath.Abs(o.WorkDir)
}

// Redact hides the credentials of a URL-like context spec (user and password, or a token in
// the user's place), for errors and logs. A spec Go cannot read as a URL (a bad %-escape, a
// space) still has what stands before the '@' of its host part hidden.
func Redact(spec string) string {
	if !strings.Contains(spec, "@") {
		return spec
	}
	u, err := url.Parse(spec)
	if err != nil {
		scheme, rest, ok := strings.Cut(spec, "://")
		if !ok {
			return spec
		}
		host := rest
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			host = rest[:i]
		}
		at := strings.LastIndex(host, "@")
		if at < 0 {
			return spec
		}
		return scheme + "://xxxxx" + rest[at:]
	}
	if u.User == nil {
		return spec
	}
	u.User = url.User("xxxxx")
	return u.String()
}
