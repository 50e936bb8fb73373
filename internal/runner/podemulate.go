package runner

import (
	"context"
	"errors"
)

// errNetworkNoneEmulated refuses NetworkNone where no namespace can be made.
var errNetworkNoneEmulated = errors.New("--network=none needs a network namespace of its own, which this container " +
	"cannot create (it lacks CAP_SYS_ADMIN); use --network=default (the pod's network), give the build pod " +
	"CAP_SYS_ADMIN, or build in directory mode")

// runPodEmulated runs s in pod mode with its Mounts, Tmpfs and secret Files
// emulated (see emulation): in this process's namespaces, each target
// holding the thing itself for the run only. Everything it put in the root
// is gone when it returns, whether the command failed or ctx ended it.
func runPodEmulated(ctx context.Context, s Spec) (err error) {
	if s.Network == NetworkNone {
		return errNetworkNoneEmulated
	}
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
	sc := newScratch("/")
	defer func() {
		if uerr := sc.undo(); uerr != nil {
			err = errors.Join(err, uerr)
		}
	}()
	if err := provideEmulated(ctx, sc, s); err != nil {
		sc.seal() // nothing ran: undo restores every parent's times
		return err
	}
	if inMount {
		if err := ensureWorkdir("/", dir, s.UID, s.GID); err != nil {
			sc.seal()
			return err
		}
	}
	sc.seal()
	return execPod(ctx, s, dir)
}

// provideEmulated puts s's mounts and files in place for the run.
func provideEmulated(ctx context.Context, sc *scratch, s Spec) error {
	if err := newEmulation(ctx, sc).provide(s); err != nil {
		return err
	}
	var plain []File
	for _, f := range s.Files {
		if !f.Secret {
			plain = append(plain, f)
		}
	}
	return providePodFiles(sc, plain)
}
