// Package atomicfile replaces files atomically: what a caller writes goes to a temporary file
// beside the destination, which is renamed over it only once complete. A reader sees the old
// file or the new one, never a torn one, and a failed write leaves no temporary file behind.
package atomicfile

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Options tune WriteWith.
type Options struct {
	// Pattern is the os.CreateTemp pattern of the temporary file's name (in path's
	// directory); "" means "."+base+".tmp-*", base being path's last element.
	Pattern string
	// Perm is the file's permission bits; 0 keeps os.CreateTemp's 0600.
	Perm os.FileMode
	// NoSync skips the fsync before the rename.
	NoSync bool
}

// Write replaces path with what fill writes, with permission perm, through a synced temporary
// file named "."+base+".tmp-*". Missing parent directories are created.
func Write(path string, perm os.FileMode, fill func(w io.Writer) error) error {
	return WriteWith(path, Options{Perm: perm}, fill)
}

// WriteWith is Write with options. It creates path's directory, lets fill write the temporary
// file, sets its mode, syncs it (unless o.NoSync), closes it and renames it to path. On any
// error the temporary file is removed and path is left as it was; a failed rename is reported
// as "moving into place: ...", other errors as they came.
func WriteWith(path string, o Options, fill func(w io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	pattern := o.Pattern
	if pattern == "" {
		pattern = "." + filepath.Base(path) + ".tmp-*"
	}
	f, err := os.CreateTemp(dir, pattern)
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
	if o.Perm != 0 {
		if err := f.Chmod(o.Perm); err != nil {
			return err
		}
	}
	if !o.NoSync {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("moving into place: %w", err)
	}
	return nil
}

// CopySHA256 copies r to w, for a fill that checks a digest: it returns the number of bytes
// copied and the hex SHA-256 of them.
func CopySHA256(w io.Writer, r io.Reader) (n int64, hexSum string, err error) {
	h := sha256.New()
	n, err = io.Copy(io.MultiWriter(w, h), r)
	return n, hex.EncodeToString(h.Sum(nil)), err
}
