package registry

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// writeFileAtomic writes what fill produces to path through a temporary file
// in the same directory, renamed into place only on success: a failure leaves
// neither a partial file nor a changed old one. Missing parent directories
// are created, as Kaniko does for digest files.
func writeFileAtomic(path string, fill func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err := fill(f); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("moving into place: %w", err)
	}
	return nil
}
