package render

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kilnbuild/kiln/internal/atomicfile"
)

// Write writes files (as Render returns them) into dir, creating it. Each file is written to a
// temporary file beside it and renamed into place, so a reader never sees half a file, and a
// failed Write leaves every file either as it was or complete. Scripts (.sh) are executable.
func Write(dir string, files map[string][]byte) error {
	names := make([]string, 0, len(files))
	for name := range files {
		if !filepath.IsLocal(name) {
			return fmt.Errorf("write %q: not a file name inside %s", name, dir)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := writeFile(filepath.Join(dir, name), files[name], mode); err != nil {
			return err
		}
	}
	return nil
}

// writeFile replaces path with data atomically.
func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := atomicfile.Write(path, mode, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
