package executor

import (
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/kilnbuild/kiln/builder"
)

// secretFlag is one --secret value, parsed: where the secret comes from, not the secret.
type secretFlag struct {
	id, src, env string
}

// parseSecretFlag parses --secret in BuildKit's syntax: id=NAME[,src=PATH|,env=VAR][,type=file|env]
// (source= is src=). With neither src nor env, the variable NAME is used when it is set,
// else the file NAME.
func parseSecretFlag(spec string) (secretFlag, error) {
	fields, err := csv.NewReader(strings.NewReader(spec)).Read()
	if err != nil {
		return secretFlag{}, fmt.Errorf("--secret %s: %w", spec, err)
	}
	var f secretFlag
	typ := ""
	for _, field := range fields {
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			return secretFlag{}, fmt.Errorf("--secret %s: %q must be key=value", spec, field)
		}
		switch strings.ToLower(k) {
		case "id":
			f.id = v
		case "src", "source":
			f.src = v
		case "env":
			f.env = v
		case "type":
			if v != "file" && v != "env" {
				return secretFlag{}, fmt.Errorf("--secret %s: type must be file or env", spec)
			}
			typ = v
		default:
			return secretFlag{}, fmt.Errorf("--secret %s: unknown key %q (want id, src, env or type)", spec, k)
		}
	}
	if f.id == "" {
		return secretFlag{}, fmt.Errorf("--secret %s: id= is missing", spec)
	}
	if typ == "env" && f.env == "" {
		f.env, f.src = f.src, ""
	}
	return f, nil
}

// secret resolves the flag: an env secret is read now (from lookupEnv), a file secret is
// checked now and read when a RUN needs it.
func (f secretFlag) secret(lookupEnv func(string) (string, bool)) (builder.Secret, error) {
	env, src := f.env, f.src
	if env == "" && src == "" {
		if _, ok := lookupEnv(f.id); ok {
			env = f.id
		} else {
			src = f.id
		}
	}
	if env != "" {
		v, ok := lookupEnv(env)
		if !ok {
			return builder.Secret{}, fmt.Errorf("--secret id=%s: environment variable %s is not set", f.id, env)
		}
		return builder.Secret{ID: f.id, Value: []byte(v)}, nil
	}
	if fi, err := os.Stat(src); err != nil {
		return builder.Secret{}, fmt.Errorf("--secret id=%s: %w", f.id, err)
	} else if fi.IsDir() {
		return builder.Secret{}, fmt.Errorf("--secret id=%s: %s is a directory", f.id, src)
	}
	return builder.Secret{ID: f.id, File: src}, nil
}

// parseSSHFlag parses --ssh as BuildKit does: ID[=PATH[,PATH...]], where PATH is an agent
// socket or private key files. "default" without paths is the agent of $SSH_AUTH_SOCK.
func parseSSHFlag(spec string, lookupEnv func(string) (string, bool)) (builder.SSHAgent, error) {
	id, paths, ok := strings.Cut(spec, "=")
	if id == "" {
		return builder.SSHAgent{}, fmt.Errorf("--ssh %s: the id is missing (--ssh default, or --ssh ID=SOCKET)", spec)
	}
	a := builder.SSHAgent{ID: id}
	if ok {
		for _, p := range strings.Split(paths, ",") {
			if p != "" {
				a.Paths = append(a.Paths, p)
			}
		}
	}
	if len(a.Paths) == 0 {
		sock, set := lookupEnv("SSH_AUTH_SOCK")
		if !set || sock == "" {
			return builder.SSHAgent{}, fmt.Errorf("--ssh %s: no socket given and SSH_AUTH_SOCK is not set", spec)
		}
		a.Paths = []string{sock}
	}
	for _, p := range a.Paths {
		if _, err := os.Stat(p); err != nil {
			return builder.SSHAgent{}, fmt.Errorf("--ssh %s: %w", spec, err)
		}
	}
	return a, nil
}

// mountOptions turns --secret and --ssh into builder options, and --cache-dir into where
// cache mounts live (<cache-dir>/mounts).
func mountOptions(c *Config, lookupEnv func(string) (string, bool)) ([]builder.Option, error) {
	var opts []builder.Option
	if c.CacheDir != "" {
		opts = append(opts, builder.WithRunCacheDir(strings.TrimSuffix(c.CacheDir, "/")+"/mounts"))
	}
	var secrets []builder.Secret
	for _, spec := range c.Secrets {
		f, err := parseSecretFlag(spec)
		if err != nil {
			return nil, err
		}
		s, err := f.secret(lookupEnv)
		if err != nil {
			return nil, err
		}
		secrets = append(secrets, s)
	}
	var agents []builder.SSHAgent
	for _, spec := range c.SSH {
		a, err := parseSSHFlag(spec, lookupEnv)
		if err != nil {
			return nil, err
		}
		agents = append(agents, a)
	}
	return append(opts, builder.WithSecrets(secrets...), builder.WithSSH(agents...)), nil
}

// validateMountFlags checks the syntax of --secret (what it names is checked when Run starts).
func (c *Config) validateMountFlags() error {
	var errs []error
	for _, spec := range c.Secrets {
		if _, err := parseSecretFlag(spec); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
