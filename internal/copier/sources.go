package copier

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// source is one local source after glob expansion.
type source struct {
	rel  string      // slash-separated, relative to SrcRoot ("." for the root)
	name string      // name given to it inside a directory destination
	host string      // host path with a top-level symlink followed inside SrcRoot
	info fs.FileInfo // stat of host
	// excluded marks an explicitly named directory that .dockerignore
	// excludes; only its re-included descendants are copied.
	excluded bool
}

// cleanSource makes a written source relative to SrcRoot and rejects one
// that climbs out of it, or is empty: path.Clean would make that ".", the
// whole of SrcRoot, which no Dockerfile means (a variable expanded to nothing).
func cleanSource(src string) (string, error) {
	if src == "" {
		return "", errors.New("empty source path")
	}
	if path.IsAbs(src) {
		rel := strings.TrimPrefix(path.Clean(src), "/")
		if rel == "" {
			rel = "."
		}
		return rel, nil
	}
	rel := path.Clean(src)
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("forbidden path outside the build context: %s", src)
	}
	return rel, nil
}

// hasWildcards reports whether a path component holds glob syntax.
func hasWildcards(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '*', '?', '[':
			return true
		}
	}
	return false
}

// expandSource resolves one written local source to the sources it names.
// A glob that matches nothing yields no sources and no error.
func (j *job) expandSource(src string) ([]source, error) {
	rel, err := cleanSource(src)
	if err != nil {
		return nil, err
	}
	if !hasWildcards(rel) {
		s, err := j.statSource(rel)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("stat %s: %w", src, fs.ErrNotExist)
		}
		if err != nil {
			return nil, fmt.Errorf("stat %s: %w", src, err)
		}
		if j.excluded(rel) {
			// An excluded directory may still hold "!" exceptions.
			if !s.info.IsDir() || !j.anyIncluded(s.host, rel) {
				return nil, fmt.Errorf("stat %s: %w (excluded by .dockerignore)", src, fs.ErrNotExist)
			}
			s.excluded = true
		}
		return []source{s}, nil
	}
	rels, err := j.glob(rel)
	if err != nil {
		return nil, fmt.Errorf("expand %s: %w", src, err)
	}
	var out []source
	for _, m := range rels {
		if j.excluded(m) {
			continue
		}
		s, err := j.statSource(m)
		if errors.Is(err, fs.ErrNotExist) {
			continue // e.g. "dir*/x" where one dir has no x
		}
		if err != nil {
			return nil, fmt.Errorf("stat %s: %w", m, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// statSource resolves rel inside SrcRoot, following symlinks without leaving it.
func (j *job) statSource(rel string) (source, error) {
	host, err := securejoin.SecureJoin(j.req.SrcRoot, filepath.FromSlash(rel))
	if err != nil {
		return source{}, err
	}
	fi, err := os.Lstat(host)
	if err != nil {
		return source{}, err
	}
	return source{rel: rel, name: path.Base(rel), host: host, info: fi}, nil
}

// glob expands a relative pattern component by component, as Docker does.
func (j *job) glob(pattern string) ([]string, error) {
	bases := []string{"."}
	for _, comp := range strings.Split(pattern, "/") {
		if !hasWildcards(comp) {
			for i, b := range bases {
				bases[i] = path.Join(b, comp)
			}
			continue
		}
		if _, err := path.Match(comp, ""); err != nil {
			return nil, fmt.Errorf("bad pattern %q: %w", comp, err)
		}
		var next []string
		for _, b := range bases {
			dir, err := securejoin.SecureJoin(j.req.SrcRoot, filepath.FromSlash(b))
			if err != nil {
				return nil, err
			}
			ents, err := os.ReadDir(dir)
			if err != nil {
				continue // not a directory or missing: no matches below it
			}
			for _, e := range ents {
				if ok, _ := path.Match(comp, e.Name()); ok {
					next = append(next, path.Join(b, e.Name()))
				}
			}
		}
		bases = next
	}
	return bases, nil
}

// anyIncluded reports whether some entry below an excluded directory is
// re-included by a "!" exception.
func (j *job) anyIncluded(host, rel string) bool {
	found := errors.New("found")
	err := filepath.WalkDir(host, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == host {
			return nil
		}
		r, _ := filepath.Rel(host, p)
		if !j.excluded(path.Join(rel, filepath.ToSlash(r))) {
			return found
		}
		return nil
	})
	return err == found
}
