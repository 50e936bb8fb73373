package buildcontext

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path"
	"reflect"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/kilnbuild/kiln/internal/fuzztar"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// FuzzParseGitContext checks what follows git:// in --context: no panic; what it accepts is
// an http(s) URL without fragments, a non-empty ref when a '#' was given and a full SHA as
// the commit; and no error repeats the credentials written before the host.
func FuzzParseGitContext(f *testing.F) {
	const sha = "0123456789abcdef0123456789abcdef01234567"
	for _, s := range []string{
		"github.com/org/app.git", "github.com/org/app.git#refs/heads/dev", "example.com:8443/app#" + sha,
		"host/app.git#refs/pull/7/head#" + sha, "user:tok@host/app.git#main", "ghp_token1234@github.com/o/r.git",
		"/app.git", "host/a##", "host/a#main#nothex", "a#b#c#d", "user:secret@/app", "tok3n@", ":@/",
	} {
		f.Add(s, "")
	}
	f.Add("host/app", "http")
	f.Add("host/app", "ssh")
	f.Fuzz(func(t *testing.T, rest, method string) {
		s, err := parseGitContext(rest, method)
		if err != nil {
			checkNoCredentials(t, err.Error(), rest)
			return
		}
		if !strings.HasPrefix(s.URL, "https://") && !strings.HasPrefix(s.URL, "http://") || strings.Contains(s.URL, "#") {
			t.Errorf("URL %q", s.URL)
		}
		if strings.Contains(rest, "#") && s.Ref == "" || s.Commit != "" && !plumbing.IsHash(s.Commit) {
			t.Errorf("ref %q, commit %q from %q", s.Ref, s.Commit, rest)
		}
		s.refIsCommit()
	})
}

// checkNoCredentials fails t if msg holds the user information of the repository address in
// rest (before its first '/' and last '@' there): a token or a password, at least 4 bytes,
// without a '?' (which starts a URL's query, so is no part of its user information).
func checkNoCredentials(t *testing.T, msg, rest string) {
	t.Helper()
	host, _, _ := strings.Cut(rest, "/")
	host, _, _ = strings.Cut(host, "#")
	at := strings.LastIndex(host, "@")
	if at < 0 {
		return
	}
	if strings.Contains(host[:at], "?") {
		return
	}
	for _, secret := range strings.Split(host[:at], ":") {
		if len(secret) >= 4 && strings.Contains(msg, secret) && !strings.Contains(host[at:]+rest[len(host):], secret) {
			t.Errorf("error %q repeats the credential %q", msg, secret)
		}
	}
}

// FuzzParseGitRef reads Git sources as ADD and --build-context take them. Nothing may panic;
// what it accepts clones a remote without fragment or query, into a clean relative
// sub-directory, as a named ssh user over ssh; and no error shows the password of the URL.
func FuzzParseGitRef(f *testing.F) {
	for _, s := range []string{
		"https://github.com/moby/buildkit.git#v0.12.0:docs", "https://github.com/o/r.git?ref=main&subdir=a/../../b&keep-git-dir=true",
		"git://host/o/r#refs/pull/1/head", "ssh://git@host:2222/o/r.git#main", "git@github.com:o/r.git#v1:sub",
		"git@github.com:o/r.git?branch=dev&submodules=false", "https://u:pa55word@host/r.git?bogus=1",
		"https://u:pa55word@host/r.git?ref=a&ref=b", "https://u:pa55word@host/r.git?branch=a&tag=b",
		"https://u:pa55word@host/r.git?keep-git-dir=maybe", "https://host/archive.tar.gz", "./local/dir",
		"x@y:z?%zz", "https://host/r.git#:../../..", "https://host/r.git?checksum=abc&commit=def",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, ok, err := ParseGitRef(s)
		if err != nil {
			if u, perr := url.Parse(s); perr == nil && u.User != nil {
				if pass, set := u.User.Password(); set && len(pass) >= 4 && strings.Contains(err.Error(), pass) &&
					!strings.Contains(u.Host+u.Path+u.RawQuery+u.Fragment, pass) {
					t.Errorf("error %q shows the password", err)
				}
			}
			return
		}
		if !ok {
			return
		}
		if ref.Remote == "" || !ref.SSH && (strings.Contains(ref.Remote, "#") || strings.Contains(ref.Remote, "?")) {
			t.Errorf("%q: remote %q", s, ref.Remote)
		}
		if ref.SubDir != "" && (path.IsAbs(ref.SubDir) || path.Clean(ref.SubDir) != ref.SubDir || ref.SubDir == ".." ||
			strings.HasPrefix(ref.SubDir, "../")) {
			t.Errorf("%q: sub-directory %q", s, ref.SubDir)
		}
		if ref.SSH && ref.User == "" {
			t.Errorf("%q: ssh without a user", s)
		}
	})
}

// FuzzRedact checks that Redact hides the user and password of any URL-like spec, whatever
// the rest of it holds (a bad escape, spaces, fragments), whenever they are not also written
// elsewhere in the spec.
func FuzzRedact(f *testing.F) {
	f.Add("https", "user", "hunter2", "host/ctx.tar.gz")
	f.Add("git", "ghp_token", "", "github.com/org/app.git#main")
	f.Add("https", "user", "hunter2", "host/%zz.tar.gz")
	f.Add("https", "user", "pass word", "host/x")
	f.Add("git", "tok", "", "/app")
	f.Add("tar", "", "", "stdin")
	f.Fuzz(func(t *testing.T, scheme, user, pass, rest string) {
		userinfo := user
		if pass != "" {
			userinfo += ":" + pass
		}
		if strings.ContainsAny(scheme, "/?#@:") || strings.ContainsAny(userinfo, "/?#") {
			return // then the user information is not where a URL has it
		}
		spec := scheme + "://" + userinfo + "@" + rest
		got := Redact(spec)
		for _, secret := range []string{user, pass, url.PathEscape(pass), url.QueryEscape(pass)} {
			if len(secret) < 4 || strings.Contains(scheme+"://", secret) || strings.Contains("@"+rest, secret) ||
				strings.Contains("xxxxx", secret) {
				continue
			}
			if strings.Contains(got, secret) {
				t.Errorf("Redact(%q) = %q: it shows %q", spec, got, secret)
			}
		}
		if s := "dir://" + rest; !strings.Contains(rest, "@") && Redact(s) != s {
			t.Errorf("Redact(%q) = %q, want it unchanged", s, Redact(s))
		}
	})
}

// FuzzParseGitFlag checks --git: no panic, errors name the flag, a negative depth is refused,
// and joining values with a comma is the same as giving them one after the other.
func FuzzParseGitFlag(f *testing.F) {
	f.Add("branch=main,single-branch=true", "depth=1")
	f.Add("recurse-submodules=false,insecure-skip-tls=1", "")
	f.Add("depth=-1", "branch")
	f.Add(" , ,branch=a=b", "unknown=1")
	f.Fuzz(func(t *testing.T, a, b string) {
		g, err := ParseGitFlag(a + "," + b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "--git ") {
				t.Errorf("error %q does not name --git", err)
			}
			return
		}
		if g.Depth < 0 {
			t.Errorf("depth %d accepted", g.Depth)
		}
		var h GitOptions
		if err := h.set(a); err != nil {
			t.Fatalf("%q alone fails (%v) but %q with it does not", a, err, a+","+b)
		}
		if err := h.set(b); err != nil {
			t.Fatalf("%q alone fails: %v", b, err)
		}
		if !reflect.DeepEqual(g, h) {
			t.Errorf("%q: %+v; one after the other: %+v", a+","+b, g, h)
		}
	})
}

// maxSparse bounds the logical size of the sparse files of a fuzz input (see the snapshot
// package's FuzzExtract).
const maxSparse = 64 << 20

// FuzzUntar unpacks a context archive (an arbitrary tar, its header checksums repaired, then
// gzip, zstd, xz or not compressed as how says) into a jail's root: no panic, nothing outside
// the root changed, no more disk than the archive justifies.
func FuzzUntar(f *testing.F) {
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	seeds := [][]byte{
		cat(fuzztar.Header("Dockerfile", "", '0', 0o644, 12), fuzztar.Pad([]byte("FROM scratch")),
			fuzztar.Header("src/", "", '5', 0o755, 0), fuzztar.Header("src/link", "../Dockerfile", '2', 0o777, 0), fuzztar.End()),
		cat(fuzztar.Header("../kz-a", "", '0', 0o644, 1), fuzztar.Pad([]byte("x")), fuzztar.End()),
		cat(fuzztar.Header("kz-a", "/", '2', 0o777, 0), fuzztar.Header("kz-a/kz-b", "", '0', 0o644, 1), fuzztar.Pad([]byte("x")), fuzztar.End()),
		cat(fuzztar.Header("up/secret", "", '0', 0o644, 1), fuzztar.Pad([]byte("x")), fuzztar.End()),
		cat(fuzztar.Header("x", "../outside/secret", '1', 0o644, 0), fuzztar.End()),
		{},
		[]byte("not a tar"),
	}
	for i, s := range seeds {
		f.Add(s, uint8(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, how uint8) {
		if os.Geteuid() != 0 {
			t.Skip("needs root (chown, mknod)")
		}
		j := fuzztar.New(t)
		stream := fuzztar.FixChecksums(data)
		if fuzztar.SparseSize(stream) > maxSparse {
			t.Skip("sparse files larger than the harness reads")
		}
		var buf bytes.Buffer
		switch how % 4 {
		case 1:
			w := gzip.NewWriter(&buf)
			w.Write(stream)
			w.Close()
		case 2:
			w, _ := zstd.NewWriter(&buf)
			w.Write(stream)
			w.Close()
		case 3:
			w, _ := xz.NewWriter(&buf)
			w.Write(stream)
			w.Close()
		default:
			buf.Write(stream)
		}
		if err := untar(context.Background(), &buf, j.Root); err != nil && err.Error() == "" {
			t.Error("an empty error")
		}
		j.Check(t, false, fuzztar.Budget(len(stream)))
	})
}
