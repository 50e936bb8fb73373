package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"syscall"

	"github.com/kilnbuild/kiln/internal/copier"
)

// moveAside moves everything under root except ignored paths into dst, keeping the tree's
// shape, so a finished stage's files stay readable for COPY --from while the root is reused. A
// directory that contains ignored paths (such as /etc holding the pod's /etc/hosts mount) is
// recreated in dst and its other children are moved one by one. Renames make this cost one
// operation per top-level entry; across filesystems it falls back to copying.
func moveAside(root, dst string, ignore *ignoreList) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	return moveChildren(root, dst, "/", ignore)
}

func moveChildren(root, dst, dir string, ignore *ignoreList) error {
	entries, err := os.ReadDir(filepath.Join(root, dir))
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := path.Join(dir, e.Name())
		if ignore.Ignored(p) {
			continue
		}
		src, to := filepath.Join(root, p), filepath.Join(dst, p)
		if e.IsDir() && ignore.HasBelow(p) {
			fi, err := os.Lstat(src)
			if err != nil {
				return err
			}
			if err := os.Mkdir(to, fi.Mode().Perm()); err != nil && !os.IsExist(err) {
				return err
			}
			if err := moveChildren(root, dst, p, ignore); err != nil {
				return err
			}
			continue
		}
		if err := os.Rename(src, to); err != nil {
			if !errors.Is(err, syscall.EXDEV) {
				return fmt.Errorf("moving %s: %w", p, err)
			}
			if err := copyEntry(root, dst, p); err != nil {
				return fmt.Errorf("copying %s aside: %w", p, err)
			}
			if err := os.RemoveAll(src); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyEntry copies the image path p of root to the same path under dst, keeping modes,
// owners, times, links and xattrs: the rare cross-filesystem case of moveAside, done by the
// same code as COPY --from (owners kept). A symlink is recreated, not followed.
func copyEntry(root, dst, p string) error {
	src := filepath.Join(root, p)
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, p)
		if err := os.Symlink(target, to); err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		return os.Lchown(to, int(st.Uid), int(st.Gid))
	}
	_, err = copier.Copy(context.Background(), copier.Request{
		SrcRoot: root, Sources: []string{p}, Root: dst, Dest: p, WorkDir: "/", UID: -1, GID: -1,
	})
	return err
}
