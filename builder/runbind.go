package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/internal/copier"
	"github.com/kilnbuild/kiln/internal/runner"
)

// addBindMount mounts m.Source of the build context, an earlier stage or an image at m.Target:
// read-only by default; with rw the RUN may write there, and its writes are discarded.
func (b *build) addBindMount(ctx context.Context, s *stageState, rs *runSetup, m dockerfile.Mount) error {
	src, copied, err := b.bindSource(ctx, s, m, rs)
	if err != nil {
		return err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	mount := runner.Mount{Source: src, Target: m.Target, ReadOnly: m.ReadOnly}
	switch {
	case rs.emulate && copied:
		// Emulated, a read-only or discarding mount is a copy of its source (see
		// emulatemounts.go); this source is a copy of the RUN's own already, so it is moved in.
		mount.ReadOnly = false
	case m.ReadOnly:
	case fi.IsDir():
		mount.Discard = true
	default:
		// A single file cannot be an overlay: the RUN writes to a copy of it instead.
		if mount.Source, err = b.tempCopy(ctx, filepath.Dir(src), filepath.Base(src), nil, rs); err != nil {
			return err
		}
	}
	rs.mounts = append(rs.mounts, mount)
	return nil
}

// bindSource is the host path a bind mount shows: m.Source inside the stage or image m.From
// names, or inside the build context. When the context has .dockerignore patterns, the source
// is a copy without the files they exclude, as BuildKit sends the context without them, and
// copied says so.
func (b *build) bindSource(ctx context.Context, s *stageState, m dockerfile.Mount, rs *runSetup) (p string, copied bool, err error) {
	root, where := b.o.contextDir, "the build context"
	if m.From != "" {
		dir, err := b.fromDir(ctx, s, m.From)
		if err != nil {
			return "", false, err
		}
		root, where = dir, "--from="+m.From
	}
	p, err = existingSource(root, m.Source, where)
	if err != nil || m.From != "" || len(b.dockerignore.Patterns()) == 0 {
		return p, false, err
	}
	p, err = b.tempCopy(ctx, root, m.Source, b.dockerignore.Excluded, rs)
	return p, true, err
}

// existingSource resolves source inside root (symlinks stay inside it) and checks it exists.
func existingSource(root, source, where string) (string, error) {
	p, err := securejoin.SecureJoin(root, source)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("source=%s not found in %s", source, where)
	} else if err != nil {
		return "", err
	}
	return p, nil
}

// tempCopy copies source (relative to srcRoot, without what exclude names) into a temporary
// directory of the work dir, removed when the RUN is done, and returns the copy's path.
func (b *build) tempCopy(ctx context.Context, srcRoot, source string, exclude func(string) bool, rs *runSetup) (string, error) {
	dir, err := os.MkdirTemp(filepath.Join(b.workDir, "tmp"), "mount-")
	if err != nil {
		return "", err
	}
	rs.releases = append(rs.releases, func() { os.RemoveAll(dir) })
	if err := copyInto(ctx, srcRoot, source, exclude, dir); err != nil {
		return "", err
	}
	src, err := securejoin.SecureJoin(srcRoot, source)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return filepath.Join(dir, path.Base(src)), nil
	}
	// The copy's top directory is the temporary one: give it the source's mode and owner, so a
	// RUN as another user reads it as it would the source.
	st := fi.Sys().(*syscall.Stat_t)
	if err := os.Chmod(dir, fi.Mode()&os.ModePerm); err != nil {
		return "", err
	}
	return dir, os.Lchown(dir, int(st.Uid), int(st.Gid))
}

// copyMountSource fills a new cache directory with m.Source of the stage or image m.From.
func (b *build) copyMountSource(ctx context.Context, s *stageState, m dockerfile.Mount, dir string) error {
	root, err := b.fromDir(ctx, s, m.From)
	if err != nil {
		return err
	}
	if _, err := existingSource(root, m.Source, "--from="+m.From); err != nil {
		return err
	}
	return copyInto(ctx, root, m.Source, nil, dir)
}

// copyInto copies source of srcRoot into the directory dst: a directory's contents, or a file,
// keeping owners, modes and times, as COPY --from does.
func copyInto(ctx context.Context, srcRoot, source string, exclude func(string) bool, dst string) error {
	_, err := copier.Copy(ctx, copier.Request{SrcRoot: srcRoot, Sources: []string{source}, Exclude: exclude,
		Root: dst, Dest: "/", WorkDir: "/", UID: -1, GID: -1})
	return err
}
