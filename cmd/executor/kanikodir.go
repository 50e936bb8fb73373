package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// relocateKanikoDir honours --kaniko-dir (or KANIKO_DIR) the way Kaniko does: the contents of
// /kaniko are copied to the new directory, and DOCKER_CONFIG and SSL_CERT_DIR follow them, so
// the build may then treat /kaniko as ordinary image content (building the executor's own
// image needs exactly that) without losing the credentials or the CA certificates.
func relocateKanikoDir(from, to string, setenv func(k, v string) error) error {
	from, to = filepath.Clean(from), filepath.Clean(to)
	if from == to {
		return nil
	}
	if _, err := os.Stat(from); os.IsNotExist(err) {
		return nil // nothing to carry over
	}
	if err := copyDir(from, to); err != nil {
		return fmt.Errorf("--kaniko-dir %s: copying %s there: %w", to, from, err)
	}
	for _, key := range []string{"DOCKER_CONFIG", "SSL_CERT_DIR"} {
		v := os.Getenv(key)
		if v == from || strings.HasPrefix(v, from+"/") {
			if err := setenv(key, to+strings.TrimPrefix(v, from)); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyDir copies a small directory tree (the executor's own files), keeping modes.
func copyDir(from, to string) error {
	return filepath.Walk(from, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		switch {
		case fi.IsDir():
			return os.MkdirAll(dst, fi.Mode().Perm())
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			os.Remove(dst)
			return os.Symlink(target, dst)
		case fi.Mode().IsRegular():
			return copyFile(p, dst, fi.Mode().Perm())
		}
		return nil
	})
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
