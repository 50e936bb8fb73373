package buildcontext

import (
	"strings"
	"testing"
)

// Found by FuzzRedact: a spec Go's URL parser refuses (a bad %-escape, a space in the
// password) came back from Redact unchanged, credentials and all, into errors and logs.
func TestRedactUnparsableURLs(t *testing.T) {
	for spec, want := range map[string]string{
		"https://user:hunter2@host/%zz.tar.gz": "https://xxxxx@host/%zz.tar.gz",
		"https://user:pass word@host/x":        "https://xxxxx@host/x",
		"git://ghp_tok en@github.com/o/r#main": "git://xxxxx@github.com/o/r#main",
	} {
		if got := Redact(spec); got != want {
			t.Errorf("Redact(%q) = %q, want %q", spec, got, want)
		}
	}
}

// Found by FuzzParseGitContext: "git://TOKEN@/org/repo" (no host after the credentials)
// failed with an error quoting the address, token included.
func TestParseGitContextErrorHidesCredentials(t *testing.T) {
	for _, rest := range []string{"user:s3cret@/app", "ghp_t0ken@"} {
		_, err := parseGitContext(rest, "")
		if err == nil || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "ghp_t0ken") ||
			!strings.Contains(err.Error(), "no host") {
			t.Errorf("parseGitContext(%q): %v", rest, err)
		}
	}
}

// Found by FuzzParseGitRef: a Git URL ending in an empty query ("...r.git?") kept the '?' in
// the remote to clone, which is meant to be the URL without fragment and query.
func TestParseGitRefDropsEmptyQuery(t *testing.T) {
	ref, ok, err := ParseGitRef("https://github.com/o/r.git?#main")
	if err != nil || !ok || ref.Remote != "https://github.com/o/r.git" || ref.Ref != "main" {
		t.Errorf("got %+v, %v, %v", ref, ok, err)
	}
}
