package dockerfile

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

// BuildArgs holds --build-arg values. A nil value means "NAME" was given
// without "=" and the environment did not define it: it counts as not given.
type BuildArgs map[string]*string

// proxyArgs are Docker's predefined ARGs: RUN sees them when given as build
// args, even undeclared, and they are kept out of the image config and history.
var proxyArgs = []string{
	"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
	"FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
}

// IsProxyArg reports whether name is one of Docker's predefined proxy ARGs.
func IsProxyArg(name string) bool {
	for _, p := range proxyArgs {
		if p == name {
			return true
		}
	}
	return false
}

// ParseBuildArgs parses "K=V" and "K" entries. "K" takes its value from
// getenv (os.LookupEnv when nil); if unset there it is kept with a nil value.
// A later entry for the same key wins.
func ParseBuildArgs(list []string, getenv func(string) (string, bool)) (BuildArgs, error) {
	if getenv == nil {
		getenv = os.LookupEnv
	}
	args := BuildArgs{}
	for _, entry := range list {
		key, value, hasValue := strings.Cut(entry, "=")
		if strings.TrimSpace(key) == "" {
			// The entry is not quoted: what follows "=" is a value, possibly a token.
			return nil, fmt.Errorf("invalid build arg %q: empty name", key+"=…")
		}
		if !hasValue {
			if v, ok := getenv(key); ok {
				args[key] = &v
			} else {
				args[key] = nil
			}
			continue
		}
		args[key] = &value
	}
	return args, nil
}

// Value returns the value given for name, and whether one was given.
func (b BuildArgs) Value(name string) (string, bool) {
	v, ok := b[name]
	if !ok || v == nil {
		return "", false
	}
	return *v, true
}

// Unused lists, sorted, the build args given with a value that no ARG in
// used consumed. Predefined proxy args are never reported (Docker doesn't either).
func (b BuildArgs) Unused(used map[string]bool) []string {
	var out []string
	for k, v := range b {
		if v == nil || used[k] || IsProxyArg(k) {
			continue
		}
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
