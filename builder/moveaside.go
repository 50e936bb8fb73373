package builder

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"syscall"
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
			if err := copyTree(src, to); err != nil {
				return err
			}
			if err := os.RemoveAll(src); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyTree copies a file tree preserving modes, owners, symlinks and mtimes (the rare
// cross-filesystem case of moveAside).
func copyTree(src, dst string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		st, _ := fi.Sys().(*syscall.Stat_t)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, to); err != nil {
				return err
			}
		case fi.IsDir():
			if err := os.MkdirAll(to, fi.Mode().Perm()); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			in, err := os.Open(p)
			if err != nil {
				return err
			}
			out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm())
			if err != nil {
				in.Close()
				return err
			}
			_, err = io.Copy(out, in)
			in.Close()
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		default:
			return nil // devices, fifos and sockets are not needed for COPY --from
		}
		if st != nil {
			_ = os.Lchown(to, int(st.Uid), int(st.Gid))
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			_ = os.Chmod(to, fi.Mode())
			_ = os.Chtimes(to, fi.ModTime(), fi.ModTime())
		}
		return nil
	})
}
