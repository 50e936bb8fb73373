package executor

import (
	"crypto/tls"
	"fmt"
	"os"
	"strings"

	"github.com/kilnbuild/kiln/registry"
)

// Environment variables Kaniko reads in addition to the matching flags.
const (
	envRegistryMirror = "KANIKO_REGISTRY_MIRROR" // "mirror1;mirror2"
	envRegistryMap    = "KANIKO_REGISTRY_MAP"    // "orig=repl;orig2=repl2"
)

// RegistryOptions maps every registry flag onto the pull and push option
// sets. TLS, certificate and insecure settings apply to both; mirrors, maps
// and --image-download-retry to pulls only; --push-retry and immutable tags to
// pushes only. lookupEnv supplies KANIKO_REGISTRY_MIRROR and
// KANIKO_REGISTRY_MAP, which add to the flags as in Kaniko. Errors name the
// flag and the value at fault.
func (c *Config) RegistryOptions(lookupEnv func(string) (string, bool)) (pull, push []registry.Option, err error) {
	common := []registry.Option{registry.WithUserAgent("kiln-executor")}
	if len(c.InsecureRegistries) > 0 {
		common = append(common, registry.WithInsecure(c.InsecureRegistries...))
	}
	if len(c.SkipTLSVerifyRegistries) > 0 {
		common = append(common, registry.WithSkipTLSVerify(c.SkipTLSVerifyRegistries...))
	}
	certs, err := certificateOptions(c.RegistryCertificates, c.RegistryClientCerts)
	if err != nil {
		return nil, nil, err
	}
	common = append(common, certs...)

	mirrors, err := parseMirrors(withEnv(c.RegistryMirrors, envRegistryMirror, lookupEnv))
	if err != nil {
		return nil, nil, err
	}
	maps, err := parseRegistryMaps(withEnv(c.RegistryMaps, envRegistryMap, lookupEnv))
	if err != nil {
		return nil, nil, err
	}

	pull = append(append([]registry.Option{}, common...),
		registry.WithInsecureAll(c.InsecurePull), registry.WithSkipTLSVerifyAll(c.SkipTLSVerifyPull),
		registry.WithRetries(c.ImageDownloadRetry),
		// Kaniko appends the mirrors after the maps: explicit maps are tried first.
		registry.WithRegistryMap(maps), registry.WithMirrors(mirrors...),
		registry.WithSkipDefaultRegistryFallback(c.SkipDefaultRegistryFallback))
	push = append(append([]registry.Option{}, common...),
		registry.WithInsecureAll(c.Insecure), registry.WithSkipTLSVerifyAll(c.SkipTLSVerify),
		registry.WithRetries(c.PushRetry),
		registry.WithIgnoreImmutableTagErrors(c.PushIgnoreImmutableTagErrors))
	return pull, push, nil
}

// certificateOptions parses --registry-certificate host=path and
// --registry-client-cert host=cert,key, checking now that the files load so
// a typo fails before any work rather than at push time.
func certificateOptions(cas, clientCerts []string) ([]registry.Option, error) {
	var opts []registry.Option
	for _, v := range cas {
		host, path, ok := strings.Cut(v, "=")
		host, path = strings.TrimSpace(host), strings.TrimSpace(path)
		if !ok || host == "" || path == "" {
			return nil, fmt.Errorf("--registry-certificate %s: must be host=path", v)
		}
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("--registry-certificate %s: %w", v, err)
		}
		opts = append(opts, registry.WithRegistryCertificate(host, path))
	}
	for _, v := range clientCerts {
		host, pair, ok := strings.Cut(v, "=")
		cert, key, ok2 := strings.Cut(pair, ",")
		host, cert, key = strings.TrimSpace(host), strings.TrimSpace(cert), strings.TrimSpace(key)
		if !ok || !ok2 || host == "" || cert == "" || key == "" {
			return nil, fmt.Errorf("--registry-client-cert %s: must be host=certfile,keyfile", v)
		}
		if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
			return nil, fmt.Errorf("--registry-client-cert %s: %w", v, err)
		}
		opts = append(opts, registry.WithClientCertificate(host, cert, key))
	}
	return opts, nil
}

// parseMirrors splits every --registry-mirror value on ";" (the separator
// KANIKO_REGISTRY_MIRROR uses) and rejects values that are not a host.
func parseMirrors(values []string) ([]string, error) {
	var out []string
	for _, v := range values {
		for _, m := range strings.Split(v, ";") {
			m = strings.TrimSpace(m)
			if m == "" {
				continue
			}
			if strings.ContainsAny(m, "= ") {
				return nil, fmt.Errorf("--registry-mirror %s: must be host[:port][/path], e.g. mirror.gcr.io", redactSpecs(v))
			}
			out = append(out, m)
		}
	}
	return out, nil
}

// parseRegistryMaps parses --registry-map values, each one or more
// "original=replacement" pairs separated by ";" as in Kaniko. An original
// may be mapped several times; its replacements are tried in order.
func parseRegistryMaps(values []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, v := range values {
		for _, pair := range strings.Split(v, ";") {
			if strings.TrimSpace(pair) == "" {
				continue
			}
			from, to, ok := strings.Cut(pair, "=")
			from, to = strings.TrimSpace(from), strings.TrimSpace(to)
			if !ok || from == "" || to == "" {
				return nil, fmt.Errorf("--registry-map %s: must be original=replacement[;original2=replacement2]", redactSpecs(v))
			}
			out[from] = append(out[from], to)
		}
	}
	return out, nil
}

// withEnv adds the ";"-separated values of the environment variable key to
// the flag's values, as Kaniko does, without repeating one already there
// (the flag's default is the same variable, so it may hold them already).
func withEnv(flagValues []string, key string, lookupEnv func(string) (string, bool)) []string {
	out := append([]string{}, flagValues...)
	env, ok := lookupEnv(key)
	if !ok {
		return out
	}
	seen := map[string]bool{}
	for _, v := range flagValues {
		for _, part := range strings.Split(v, ";") {
			seen[strings.TrimSpace(part)] = true
		}
	}
	for _, part := range strings.Split(env, ";") {
		if part = strings.TrimSpace(part); part != "" && !seen[part] {
			seen[part] = true
			out = append(out, part)
		}
	}
	return out
}

// redactSpecs hides the user info of every spec in a ";"-separated --registry-mirror or
// --registry-map value ("orig=https://user:token@host"), for error messages.
func redactSpecs(v string) string {
	parts := strings.Split(v, ";")
	for i, p := range parts {
		if from, to, ok := strings.Cut(p, "="); ok {
			parts[i] = from + "=" + registry.RedactUserinfo(to)
		} else {
			parts[i] = registry.RedactUserinfo(p)
		}
	}
	return strings.Join(parts, ";")
}
