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
	if err := makeDirs(root, rel, os.Lstat, ownedDir(uid, gid)); err != nil {
		return fmt.Errorf("working directory %s: %w", dir, err)
	}
	return nil
}

// makeDirs creates the missing directories of rel, a path below base, one component at a
// time. A component that exists must be a directory as stat sees it: os.Lstat where the
// caller resolved rel inside a root beforehand, so that a symlink put there since is refused;
// os.Stat in the helper after it entered the root, where symlinks resolve inside it. mkdir
// creates a missing one. Errors name the component; the caller says what the path is for.
func makeDirs(base, rel string, stat func(string) (os.FileInfo, error), mkdir func(string) error) error {
	cur := base
	for _, part := range strings.Split(rel, "/") {
		if part == "" {
			continue
		}
		cur = filepath.Join(cur, part)
		fi, err := stat(cur)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s is not a directory", cur)
			}
			continue
		}
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err := mkdir(cur); err != nil {
			return err
		}
	}
	return nil
}

// ownedDir is makeDirs's mkdir for working directories: mode 0755 (Mkdir is subject to the
// umask; Docker's directories are 0755), owned by uid:gid.
func ownedDir(uid, gid uint32) func(string) error {
	return func(dir string) error {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			return err
		}
		return os.Lchown(dir, int(uid), int(gid))
	}
}
