package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Sources names the files a COPY or ADD reads, as the copier will see them.
type Sources struct {
	Root  string   // the directory sources are relative to (the build context)
	Paths []string // the sources as written after expansion; wildcards allowed
	// Exclude reports whether a context-relative, slash-separated path is left out
	// (.dockerignore and --exclude); nil excludes nothing.
	Exclude func(rel string) bool
	// ExcludeDir, when set, lets the walk skip an excluded directory whose children cannot be
	// included again by a "!" pattern (see dockerfile.Ignore.ExcludedDir).
	ExcludeDir func(rel string) (excluded, mayHaveIncludedChildren bool)
}

// FileInputs returns one Input per file, directory and symlink the sources cover (after
// exclusion), sorted by path. Each value is the entry's type, mode, owner and, for a regular
// file, the sha256 of its content, or a symlink's target; so a rename, a mode change, an owner
// change or a content change changes the key, and an excluded or unused file does not.
// A source that does not exist becomes a "missing" input: the copy itself reports the error.
func FileInputs(s Sources) ([]Input, error) {
	seen := map[string]string{}
	fsys := os.DirFS(s.Root)
	for _, src := range s.Paths {
		rel := strings.Trim(path.Clean("/"+filepath.ToSlash(src)), "/")
		if rel == "" {
			rel = "."
		}
		matches := []string{rel}
		if strings.ContainsAny(rel, "*?[") {
			m, err := fs.Glob(fsys, rel)
			if err != nil {
				return nil, fmt.Errorf("source %q: %w", src, err)
			}
			if len(m) == 0 {
				seen[rel] = "missing"
			}
			matches = m
		}
		for _, m := range matches {
			if err := s.walk(m, seen); err != nil {
				return nil, err
			}
		}
	}
	out := make([]Input, 0, len(seen))
	for p, v := range seen {
		out = append(out, Input{Name: FilePrefix + p, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s Sources) walk(rel string, seen map[string]string) error {
	host := filepath.Join(s.Root, filepath.FromSlash(rel))
	if _, err := os.Lstat(host); errors.Is(err, fs.ErrNotExist) {
		seen[rel] = "missing"
		return nil
	}
	return filepath.WalkDir(host, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("hashing COPY source %s: %w", p, err)
		}
		r, err := filepath.Rel(s.Root, p)
		if err != nil {
			return err
		}
		r = filepath.ToSlash(r)
		if s.excluded(r, d.IsDir()) {
			if d.IsDir() && s.prunable(r) {
				return filepath.SkipDir
			}
			return nil
		}
		if _, ok := seen[r]; ok {
			return nil
		}
		v, err := describeFile(p)
		if err != nil {
			return fmt.Errorf("hashing COPY source %s: %w", p, err)
		}
		seen[r] = v
		return nil
	})
}

func (s Sources) excluded(rel string, _ bool) bool {
	return rel != "." && s.Exclude != nil && s.Exclude(rel)
}

func (s Sources) prunable(rel string) bool {
	if s.ExcludeDir == nil {
		return false // without the exception check, descending is the safe choice
	}
	ex, mayInclude := s.ExcludeDir(rel)
	return ex && !mayInclude
}

// describeFile is "type mode uid:gid what" for one path, never following a symlink.
func describeFile(p string) (string, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return "", err
	}
	uid, gid := uint32(0), uint32(0)
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		uid, gid = st.Uid, st.Gid
	}
	head := fmt.Sprintf("%s %o %d:%d", fileType(fi.Mode()), fi.Mode().Perm()|specialBits(fi.Mode()), uid, gid)
	switch {
	case fi.Mode().IsRegular():
		sum, err := hashFile(p)
		if err != nil {
			return "", err
		}
		return head + " sha256:" + sum, nil
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		return head + " -> " + target, nil
	}
	return head, nil
}

func fileType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "dir"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m.IsRegular():
		return "file"
	}
	return "special"
}

func specialBits(m fs.FileMode) fs.FileMode {
	var out fs.FileMode
	if m&fs.ModeSetuid != 0 {
		out |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		out |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		out |= 0o1000
	}
	return out
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
