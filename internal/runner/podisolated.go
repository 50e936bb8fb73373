package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// needsNamespace reports whether a pod-mode run needs namespaces of its
// own: mounts can only be made, and secret files only kept off the disk,
// in a private mount namespace; NetworkNone needs a network namespace.
func needsNamespace(s Spec) bool {
	if len(s.Mounts) > 0 || len(s.Tmpfs) > 0 || s.Network == NetworkNone {
		return true
	}
	for _, f := range s.Files {
		if f.Secret {
			return true
		}
	}
	return false
}

// runPodIsolated runs s in pod mode through the helper, in a private mount
// namespace (and a network namespace for NetworkNone) but in this process's
// root and pid namespace: the command sees the pod as any pod-mode RUN
// does, plus its mounts, which vanish with the namespace. Mount points the
// root lacks are created and removed again, as in directory mode.
func runPodIsolated(ctx context.Context, s Spec) (err error) {
	dir := cleanImagePath(s.Dir)
	inMount, err := workdirInMount("/", dir, mountTargets(s))
	if err != nil {
		return err
	}
	if !inMount {
		if err := ensureWorkdir("/", dir, s.UID, s.GID); err != nil {
			return err
		}
	}
	tmp, err := os.MkdirTemp(s.TempDir, "kiln-run-")
	if err != nil {
		return fmt.Errorf("runner temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)

	sc := newScratch("/")
	defer func() {
		if uerr := sc.undo(); uerr != nil {
			err = errors.Join(err, uerr)
		}
	}()
	is := &initSpec{Pod: true, Root: "/", Stage: tmp, Args: s.Args, Env: s.Env, Dir: dir,
		UID: s.UID, GID: s.GID, Groups: s.Groups, NewNet: s.Network == NetworkNone, MakeDir: inMount}
	if err := prepareProvided(sc, is, s.Files, s, nil); err != nil {
		sc.seal() // nothing ran: undo restores every parent's times
		return err
	}
	sc.seal()
	return startHelper(ctx, is, s)
}
