package registry

import (
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
)

// splitUserinfo takes the credentials out of a mirror or registry-map spec written as a URL
// with user info, "https://user:token@mirror.example.com/path": it returns the spec without
// them and the host they are for. ok is false when the spec has none.
func splitUserinfo(spec string) (clean, host, user, password string, ok bool) {
	scheme, rest := "", strings.TrimSpace(spec)
	if i := strings.Index(rest, "://"); i >= 0 {
		scheme, rest = rest[:i+3], rest[i+3:]
	}
	hostPart, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		hostPart, path = rest[:i], rest[i:]
	}
	at := strings.LastIndexByte(hostPart, '@')
	if at < 0 {
		return spec, "", "", "", false
	}
	info, host := hostPart[:at], hostPart[at+1:]
	user, password, _ = strings.Cut(info, ":")
	if u, err := url.PathUnescape(user); err == nil {
		user = u
	}
	if p, err := url.PathUnescape(password); err == nil {
		password = p
	}
	return scheme + host + path, host, user, password, true
}

// RedactUserinfo replaces the user info of a URL-like spec ("https://user:token@host/path",
// "user:token@host") by "xxxxx", for messages: credentials never appear in a log line.
func RedactUserinfo(spec string) string {
	clean, host, _, _, ok := splitUserinfo(spec)
	if !ok {
		return spec
	}
	return strings.Replace(clean, host, "xxxxx@"+host, 1)
}

// authKeychain returns o's keychain, preceded by the credentials given in mirror and
// registry-map specs for their hosts.
func (o *options) authKeychain() authn.Keychain {
	if len(o.hostCreds) == 0 {
		return o.keychain
	}
	return authn.NewMultiKeychain(hostKeychain(o.hostCreds), o.keychain)
}

// hostKeychain serves credentials by registry host.
type hostKeychain map[string]authn.AuthConfig

func (k hostKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if c, ok := k[normalizeHost(r.RegistryStr())]; ok {
		return authn.FromConfig(c), nil
	}
	return authn.Anonymous, nil
}

// takeCredentials strips user info from spec, remembering it for the spec's host.
func (o *options) takeCredentials(spec string) string {
	clean, host, user, password, ok := splitUserinfo(spec)
	if !ok {
		return spec
	}
	if o.hostCreds == nil {
		o.hostCreds = map[string]authn.AuthConfig{}
	}
	o.hostCreds[normalizeHost(host)] = authn.AuthConfig{Username: user, Password: password}
	return clean
}
