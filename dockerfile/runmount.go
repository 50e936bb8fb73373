package dockerfile

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// Mount is one RUN --mount, as BuildKit's instructions package parsed it,
// with BuildKit's defaults filled in, so the builder reads what to do from
// the fields alone.
type Mount struct {
	Type instructions.MountType
	// Target is the absolute image path of the mount (a relative target is
	// taken from the WORKDIR). Empty only for a secret given as an env
	// variable alone.
	Target string
	// ID names the cache (default: the target as written), the secret
	// (default: the base name of the target) or the ssh agent ("default").
	ID string
	// From is the stage or image a bind (or a cache's first content) is
	// read from; "" is the build context for a bind, nothing for a cache.
	From string
	// Source is the path read inside From or the context, clean and
	// relative ("." = all of it).
	Source   string
	ReadOnly bool
	// Sharing says how concurrent builds share a cache: shared (default),
	// private or locked.
	Sharing instructions.ShareMode
	// Size limits a tmpfs, in bytes (0: no limit of its own).
	Size int64
	// Mode, UID and GID give a cache directory (0755), secret file (0400)
	// or ssh socket (0600) its permissions and owner (root by default).
	Mode     os.FileMode
	UID, GID uint32
	// Env is the variable a secret is also given in ("" : none).
	Env string
	// Required makes a missing secret or ssh agent an error instead of
	// leaving the mount out.
	Required bool
}

// RunMounts returns the --mount options of an expanded RUN (see Expand)
// with defaults applied; workdir is the WORKDIR in effect. Each ssh mount
// without a target gets /run/buildkit/ssh_agent.N, N counting the ssh
// mounts, as in BuildKit.
func RunMounts(run *instructions.RunCommand, workdir string) ([]Mount, error) {
	var out []Mount
	ssh := 0
	for _, m := range instructions.GetMounts(run) {
		mt, err := runMount(m, workdir, &ssh)
		if err != nil {
			return nil, fmt.Errorf("--mount=type=%s: %w", m.Type, err)
		}
		out = append(out, mt)
	}
	return out, nil
}

// runMount applies BuildKit's defaults to one mount.
func runMount(m *instructions.Mount, workdir string, ssh *int) (Mount, error) {
	out := Mount{Type: m.Type, ID: m.CacheID, From: m.From, ReadOnly: m.ReadOnly, Sharing: m.CacheSharing,
		Size: m.SizeLimit, Required: m.Required, Source: relSource(m.Source)}
	if m.UID != nil {
		out.UID = uint32(*m.UID)
	}
	if m.GID != nil {
		out.GID = uint32(*m.GID)
	}
	switch m.Type {
	case instructions.MountTypeCache:
		if out.ID == "" {
			out.ID = path.Clean(m.Target)
		}
		if out.Sharing == "" {
			out.Sharing = instructions.MountSharingShared
		}
		out.Mode = mode(m.Mode, 0o755)
	case instructions.MountTypeSecret:
		return secretMount(m, out, workdir)
	case instructions.MountTypeSSH:
		if m.Source != "" {
			return Mount{}, errors.New("an ssh mount takes no source")
		}
		if out.ID == "" {
			out.ID = "default"
		}
		out.Mode = mode(m.Mode, 0o600)
		if m.Target == "" {
			m.Target = "/run/buildkit/ssh_agent." + strconv.Itoa(*ssh)
		}
		*ssh++
	}
	if m.Target == "" {
		return Mount{}, errors.New("no target given")
	}
	target, err := mountTarget(m.Target, workdir)
	out.Target = target
	return out, err
}

// secretMount fills in a secret's id, target and env: id from id= or
// source=, else the target's base name; without env= the file goes to
// target= or /run/secrets/<id>; with env= alone there is no file.
func secretMount(m *instructions.Mount, out Mount, workdir string) (Mount, error) {
	if m.Source != "" {
		out.ID = m.Source
	}
	out.Source = ""
	if out.ID == "" {
		if m.Target == "" {
			return Mount{}, errors.New("give the secret an id= (or a target=)")
		}
		out.ID = path.Base(m.Target)
	}
	out.Mode = mode(m.Mode, 0o400)
	if m.Env != nil {
		out.Env = *m.Env
		if out.Env == "" {
			out.Env = out.ID
		}
	}
	target := m.Target
	if target == "" && m.Env == nil {
		target = "/run/secrets/" + path.Base(out.ID)
	}
	if target == "" {
		return out, nil
	}
	var err error
	out.Target, err = mountTarget(target, workdir)
	return out, err
}

// mountTarget makes a target absolute (relative ones are taken from the
// WORKDIR) and refuses "/".
func mountTarget(target, workdir string) (string, error) {
	if !path.IsAbs(target) {
		target = path.Join("/", workdir, target)
	}
	target = path.Clean(target)
	if target == "/" {
		return "", errors.New("cannot mount over the whole root (target=/)")
	}
	return target, nil
}

// relSource is a source= path made clean and relative; "." means all.
func relSource(src string) string {
	rel := path.Clean("/" + src)[1:]
	if rel == "" {
		return "."
	}
	return rel
}

func mode(m *uint64, def os.FileMode) os.FileMode {
	if m == nil {
		return def
	}
	return os.FileMode(*m) & os.ModePerm
}
