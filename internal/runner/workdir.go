package runner

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// cleanImagePath makes p an absolute, clean image path ("" and relative
// paths are taken from "/").
func cleanImagePath(p string) string {
	return path.Clean("/" + p)
}

// ensureWorkdir creates the working directory dir (an image path) inside
// root if it is missing, as Docker does: every created directory gets mode
// 0755 and is owned by uid:gid. Unlike the runner's mount points it stays,
// because it is part of what the instruction produces.
func ensureWorkdir(root, dir string, uid, gid uint32) error {
	hostPath, err := securejoin.SecureJoin(root, dir)
	if err != nil {
		return fmt.Errorf("working directory %s: %w", dir, err)
	}
	rel, err := filepath.Rel(root, hostPath)
	if err != nil {
		return fmt.Errorf("working directory %s: %w", dir, err)
	}
	if rel == "." {
		return nil
	}
	cur := root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("working directory %s: %s is not a directory", dir, cur)
			}
			continue
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("working directory %s: %w", dir, err)
		}
		if err := os.Mkdir(cur, 0o755); err != nil {
			return fmt.Errorf("working directory %s: %w", dir, err)
		}
		// Mkdir is subject to the umask; Docker's directories are 0755.
		if err := os.Chmod(cur, 0o755); err != nil {
			return fmt.Errorf("working directory %s: %w", dir, err)
		}
		if err := os.Lchown(cur, int(uid), int(gid)); err != nil {
			return fmt.Errorf("working directory %s: %w", dir, err)
		}
	}
	return nil
}
