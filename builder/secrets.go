package builder

import (
	"fmt"
	"os"

	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/internal/runner"
)

// Secret is a value a RUN reads through --mount=type=secret,id=ID: as a file (at target=, by
// default /run/secrets/ID) or a variable (env=), for that RUN only. Its value never enters a
// layer, the config, the history, a cache key or a log; in pod mode it is mounted from memory,
// which needs CAP_SYS_ADMIN; without it the file is written at its target for the RUN and
// removed before the snapshot, passing through the container's writable layer (a secret given
// only as a variable needs neither).
type Secret struct {
	// ID is the name RUN --mount=type=secret,id= uses.
	ID string
	// Value is the secret itself; when nil, it is read from File when a RUN needs it.
	Value []byte
	// File is the host path holding the secret (when Value is nil).
	File string
}

// maxSecretSize bounds a secret, as BuildKit does (500 KiB): secrets are held in memory.
const maxSecretSize = 500 << 10

// WithSecrets makes secrets available to RUN --mount=type=secret. A later secret with the same
// ID replaces an earlier one.
func WithSecrets(secrets ...Secret) Option {
	return func(o *options) {
		if o.secrets == nil {
			o.secrets = map[string]Secret{}
		}
		for _, s := range secrets {
			o.secrets[s.ID] = s
		}
	}
}

// value reads the secret.
func (s Secret) value() ([]byte, error) {
	if s.Value != nil {
		return s.Value, nil
	}
	fi, err := os.Stat(s.File)
	if err != nil {
		return nil, fmt.Errorf("secret %q: %w", s.ID, err)
	}
	if fi.Size() > maxSecretSize {
		return nil, fmt.Errorf("secret %q is larger than %d KiB", s.ID, maxSecretSize>>10)
	}
	return os.ReadFile(s.File)
}

// addSecret gives the RUN the secret m.ID as a file and/or a variable. A secret that was not
// given is an error when the mount says required, and otherwise left out with a warning.
func (b *build) addSecret(rs *runSetup, m dockerfile.Mount) error {
	sec, ok := b.o.secrets[m.ID]
	if !ok {
		if m.Required {
			return fmt.Errorf("secret id=%s is required but was not given (--secret id=%s,src=PATH or env=VAR)", m.ID, m.ID)
		}
		b.warn("secret id=%s was not given: the RUN runs without it (add required=true to make that an error)", m.ID)
		return nil
	}
	data, err := sec.value()
	if err != nil {
		return err
	}
	if len(data) > maxSecretSize {
		return fmt.Errorf("secret %q is larger than %d KiB", m.ID, maxSecretSize>>10)
	}
	if m.Target != "" {
		rs.files = append(rs.files, runner.File{Path: m.Target, Data: data, Mode: m.Mode, UID: m.UID, GID: m.GID, Secret: true})
	}
	if m.Env != "" {
		rs.env = append(rs.env, m.Env+"="+string(data))
	}
	return nil
}
