package builder

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/internal/runner"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// A pod-mode RUN's mounts need a mount namespace of its own, which needs CAP_SYS_ADMIN, which
// build pods usually lack; Kaniko ignored RUN --mount and so built such Dockerfiles there. A pod
// that cannot make the namespace gets the mounts emulated instead (runner.Spec.EmulateMounts):
// each target holds the thing itself during the RUN (a cache directory renamed into place, or
// a symlink to it across file systems; a copy of a bind source; an empty directory for a tmpfs;
// a secret written as a file; a socket relaying to an ssh agent), taken away again before the
// snapshot. --network=none stays an error there.

// mountEmulation is what one build knows about emulating pod-mode mounts: whether the pod can
// make a mount namespace (probed once) and which warnings it gave.
type mountEmulation struct {
	probe  sync.Once
	err    error // why the pod cannot make a mount namespace; nil: it can
	warned sync.Once
	secret sync.Once
}

// errNetworkNoneInPod refuses RUN --network=none where no network namespace can be made.
var errNetworkNoneInPod = errors.New("RUN --network=none needs a network namespace of its own, which this pod " +
	"cannot create (it lacks CAP_SYS_ADMIN); use --network=default to run it with the pod's network, give the " +
	"build pod CAP_SYS_ADMIN, or build in directory mode")

// podIsolates reports whether pod-mode RUNs can have namespaces of their own, probing once.
func (b *build) podIsolates() bool {
	b.emulation.probe.Do(func() { b.emulation.err = runner.PodIsolation() })
	return b.emulation.err == nil
}

// emulatesMounts reports whether the mounts of a RUN are emulated: in pod mode, when the pod
// cannot make a mount namespace. --network=none there is an error.
func (b *build) emulatesMounts(c *instructions.RunCommand, mounts []dockerfile.Mount) (bool, error) {
	none := instructions.GetNetwork(c) == instructions.NetworkNone
	if !b.o.podMode || (len(mounts) == 0 && !none) || b.podIsolates() {
		return false, nil
	}
	if none {
		return false, errNetworkNoneInPod
	}
	for _, m := range mounts {
		if err := b.checkEmulatedTarget(m); err != nil {
			return false, err
		}
	}
	return true, nil
}

// checkEmulatedTarget refuses a mount whose target is, or holds, a path the build leaves alone
// (the executor's directory, a mount point of the pod, an --ignore-path): the emulation moves
// what is at a target aside for the RUN, and would move those with it.
func (b *build) checkEmulatedTarget(m dockerfile.Mount) error {
	if m.Target == "" {
		return nil
	}
	t := path.Clean("/" + m.Target)
	if b.ignore.HasBelow(t) || slices.Contains(b.ignore.paths, t) {
		return fmt.Errorf("%s: without a mount namespace (no CAP_SYS_ADMIN) the mount is emulated by putting "+
			"things at %s, which is or holds a path the build must leave alone (the executor's directory, a mount "+
			"point of the pod or an --ignore-path); choose another target, or give the pod CAP_SYS_ADMIN", mountLabel(m), t)
	}
	return nil
}

// warnEmulated says, once per build, that mounts are emulated and how, naming the first RUN's
// line and mounts; and, once, that a secret file passes through the container's writable layer.
func (b *build) warnEmulated(c *instructions.RunCommand, mounts []dockerfile.Mount) {
	var what []string
	for _, m := range mounts {
		if d := emulatedAs(m); d != "" && b.gives(m) {
			what = append(what, d)
		}
	}
	if len(what) == 0 {
		return
	}
	b.emulation.warned.Do(func() {
		b.warn("%s:%d: this pod cannot create a mount namespace (%v; it lacks CAP_SYS_ADMIN), so the mounts of this RUN "+
			"and of later ones are emulated without mounting, and taken away again before the snapshot: %s",
			b.df.Name, lineOf(c), b.emulation.err, strings.Join(what, "; "))
	})
	for _, m := range mounts {
		if m.Type == instructions.MountTypeSecret && m.Target != "" && b.gives(m) {
			b.emulation.secret.Do(func() {
				b.warn("%s:%d: without a mount namespace a secret file (here %s) is written into the container's "+
					"writable layer while the RUN runs, and removed before the snapshot (it never enters the image); "+
					"give the pod CAP_SYS_ADMIN to keep it in memory, or read it through env= instead",
					b.df.Name, lineOf(c), m.Target)
			})
		}
	}
}

// emulatedAs says what a RUN sees at a mount's target when it is emulated ("" : nothing there).
func emulatedAs(m dockerfile.Mount) string {
	switch m.Type {
	case instructions.MountTypeCache:
		return fmt.Sprintf("cache %s: the cache directory itself, renamed there and back, or a symlink to it "+
			"when it lies on another file system (a volume)", m.Target)
	case instructions.MountTypeBind:
		return fmt.Sprintf("bind %s: a copy of the source, writes discarded", m.Target)
	case instructions.MountTypeTmpfs:
		return fmt.Sprintf("tmpfs %s: an empty directory without a size limit", m.Target)
	case instructions.MountTypeSecret:
		if m.Target == "" {
			return ""
		}
		return fmt.Sprintf("secret id=%s: a file written at %s", m.ID, m.Target)
	case instructions.MountTypeSSH:
		return fmt.Sprintf("ssh id=%s: a socket at %s relaying to the agent", m.ID, m.Target)
	}
	return ""
}

// gives reports whether the build has what m shows: its secret or ssh agent (a missing one is
// left out with a warning of its own).
func (b *build) gives(m dockerfile.Mount) bool {
	switch m.Type {
	case instructions.MountTypeSecret:
		_, ok := b.o.secrets[m.ID]
		return ok
	case instructions.MountTypeSSH:
		_, ok := b.o.ssh[m.ID]
		return ok
	}
	return true
}
