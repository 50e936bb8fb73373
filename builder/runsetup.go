package builder

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/internal/runner"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// runSetup is what a RUN's --mount and --network options add to its runner.Spec, and what to
// undo once it ran (cache locks, ssh forwarders, copies of bind sources).
type runSetup struct {
	mounts   []runner.Mount
	tmpfs    []runner.Tmpfs
	files    []runner.File
	env      []string // secrets given as variables, SSH_AUTH_SOCK
	network  runner.Network
	releases []func()
	// emulate provides the mounts without a mount namespace (see emulatemounts.go).
	emulate bool
}

// apply adds the setup to spec.
func (rs *runSetup) apply(spec *runner.Spec) {
	spec.Mounts = append(spec.Mounts, rs.mounts...)
	spec.Tmpfs = append(spec.Tmpfs, rs.tmpfs...)
	spec.Files = append(spec.Files, rs.files...)
	spec.Env = append(spec.Env, rs.env...)
	spec.Network = rs.network
	spec.EmulateMounts = rs.emulate
}

// done releases what the setup holds, newest first.
func (rs *runSetup) done() {
	for i := len(rs.releases) - 1; i >= 0; i-- {
		rs.releases[i]()
	}
	rs.releases = nil
}

// setupRun turns a RUN's flags into its runSetup. workdir is the WORKDIR the RUN runs in, and
// env the environment it already has (SSH_AUTH_SOCK there wins). Flags that cannot be honoured
// are errors; the caller names the line.
func (b *build) setupRun(ctx context.Context, s *stageState, c *instructions.RunCommand, workdir string,
	env []string) (*runSetup, error) {
	if err := b.checkRunFlags(c); err != nil {
		return nil, err
	}
	rs := &runSetup{}
	if instructions.GetNetwork(c) == instructions.NetworkNone {
		rs.network = runner.NetworkNone
	}
	mounts, err := dockerfile.RunMounts(c, workdir)
	if err != nil {
		return nil, err
	}
	if rs.emulate, err = b.emulatesMounts(c, mounts); err != nil {
		return nil, err
	}
	for _, m := range mounts {
		if err := b.addMount(ctx, s, rs, m); err != nil {
			rs.done()
			return nil, fmt.Errorf("%s: %w", mountLabel(m), err)
		}
	}
	if sock := firstSSHTarget(mounts, rs); sock != "" && !hasEnv(env, "SSH_AUTH_SOCK") {
		rs.env = append(rs.env, "SSH_AUTH_SOCK="+sock)
	}
	if rs.emulate {
		b.warnEmulated(c, mounts)
	}
	return rs, nil
}

// mountLabel names a mount in errors: by id for secrets and ssh agents, by target otherwise.
func mountLabel(m dockerfile.Mount) string {
	if m.Type == instructions.MountTypeSecret || m.Type == instructions.MountTypeSSH {
		return fmt.Sprintf("--mount=type=%s,id=%s", m.Type, m.ID)
	}
	return fmt.Sprintf("--mount=type=%s,target=%s", m.Type, m.Target)
}

// checkRunFlags refuses RUN flags this builder cannot honour and says what --security does.
func (b *build) checkRunFlags(c *instructions.RunCommand) error {
	if len(instructions.GetDevices(c)) > 0 {
		return fmt.Errorf("RUN --device is not supported: no CDI devices can be given to a RUN here")
	}
	if instructions.GetSecurity(c) == instructions.SecurityInsecure {
		how := "with the pod's own privileges"
		if !b.o.podMode {
			how = "as root in its own namespaces, with every capability but a read-only /sys and a minimal /dev"
		}
		b.warn("%s:%d: RUN --security=insecure: this RUN runs as every RUN does here, %s", b.df.Name, lineOf(c), how)
	}
	return nil
}

// addMount adds one --mount to rs.
func (b *build) addMount(ctx context.Context, s *stageState, rs *runSetup, m dockerfile.Mount) error {
	switch m.Type {
	case instructions.MountTypeCache:
		return b.addCacheMount(ctx, s, rs, m)
	case instructions.MountTypeBind:
		return b.addBindMount(ctx, s, rs, m)
	case instructions.MountTypeTmpfs:
		rs.tmpfs = append(rs.tmpfs, runner.Tmpfs{Target: m.Target, Size: m.Size})
		return nil
	case instructions.MountTypeSecret:
		return b.addSecret(rs, m)
	case instructions.MountTypeSSH:
		return b.addSSH(rs, m)
	}
	return fmt.Errorf("mount type %q is not supported", m.Type)
}

// addCacheMount mounts the cache directory of m.ID, held as its sharing says until the RUN ends.
func (b *build) addCacheMount(ctx context.Context, s *stageState, rs *runSetup, m dockerfile.Mount) error {
	cs := cacheSpec{id: m.ID, sharing: m.Sharing, mode: m.Mode, uid: m.UID, gid: m.GID}
	if m.From != "" {
		cs.seed = func(dir string) error { return b.copyMountSource(ctx, s, m, dir) }
	}
	dirs := b.cacheMountDirs()
	lease, err := dirs.acquire(ctx, cs, func() {
		b.progress(fmt.Sprintf("waiting for cache mount id=%s (sharing=%s), which another build holds", m.ID, m.Sharing))
	})
	if err != nil {
		return err
	}
	rs.releases = append(rs.releases, lease.release)
	rs.mounts = append(rs.mounts, runner.Mount{Source: lease.dir, Target: m.Target, ReadOnly: m.ReadOnly})
	return nil
}

// cacheMountDirs is where cache mounts live: WithRunCacheDir, or <work dir>/cache-mounts. A
// directory that the snapshot would see (in pod mode: not a volume nor below the executor's
// directory; in directory mode: inside the root) would put the caches into the image, so the
// work dir's is used instead, with a warning (in a pod, that cache ends with the pod).
func (b *build) cacheMountDirs() cacheDirs {
	if b.mountCache != nil {
		return *b.mountCache
	}
	fallback := filepath.Join(b.workDir, "cache-mounts")
	dir, err := filepath.Abs(b.o.runCacheDir)
	switch {
	case b.o.runCacheDir == "" || err != nil:
		dir = fallback
	case b.o.podMode && !b.ignore.Ignored(dir):
		b.warn("cache mounts: %s is not a mounted volume (nor below %s), so it would end up in the image; "+
			"using %s, which ends with this pod (mount a persistent volume at %s to keep the caches)",
			dir, b.o.kanikoDir, fallback, dir)
		dir = fallback
	case !b.o.podMode && within(dir, b.root):
		b.warn("cache mounts: %s lies inside the root %s, so it would end up in the image; using %s", dir, b.root, fallback)
		dir = fallback
	}
	b.mountCache = &cacheDirs{root: dir}
	return *b.mountCache
}

// within reports whether host path p is dir or lies below it.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// firstSSHTarget is the socket SSH_AUTH_SOCK names: the first ssh mount that was provided.
func firstSSHTarget(mounts []dockerfile.Mount, rs *runSetup) string {
	for _, m := range mounts {
		if m.Type != instructions.MountTypeSSH {
			continue
		}
		for _, rm := range rs.mounts {
			if rm.Target == m.Target {
				return m.Target
			}
		}
	}
	return ""
}

// progress reports long work moving (a wait), which the executor logs at info level.
func (b *build) progress(msg string) {
	b.o.reporter.Report(Event{Kind: EventProgress, Time: time.Now(), Message: msg})
}
