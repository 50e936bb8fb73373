package dockerfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// Ignore is a parsed .dockerignore. A nil *Ignore excludes nothing. Its
// methods are safe for concurrent use.
type Ignore struct {
	patterns []string
	mu       sync.Mutex // patternmatcher compiles lazily and is not concurrency-safe
	pm       *patternmatcher.PatternMatcher
}

// LoadIgnore reads <dockerfile>.dockerignore next to the Dockerfile if it
// exists (BuildKit's rule), else <contextDir>/.dockerignore. With neither,
// nothing is excluded. The Dockerfile and the ignore file are not
// force-included: a pattern matching them excludes them, as in BuildKit.
func LoadIgnore(contextDir, dockerfilePath string) (*Ignore, error) {
	var candidates []string
	if dockerfilePath != "" {
		candidates = append(candidates, dockerfilePath+".dockerignore")
	}
	candidates = append(candidates, filepath.Join(contextDir, ".dockerignore"))
	for _, p := range candidates {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("dockerignore: %w", err)
		}
		patterns, err := ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("dockerignore: read %s: %w", p, err)
		}
		ig, err := NewIgnore(patterns)
		if err != nil {
			return nil, fmt.Errorf("dockerignore: %s: %w", p, err)
		}
		return ig, nil
	}
	return &Ignore{}, nil
}

// NewIgnore builds an Ignore from .dockerignore patterns ("!" = exception).
func NewIgnore(patterns []string) (*Ignore, error) {
	ig := &Ignore{patterns: append([]string(nil), patterns...)}
	if len(patterns) == 0 {
		return ig, nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("invalid pattern: %w", err)
	}
	ig.pm = pm
	return ig, nil
}

// Patterns returns the patterns as read (nil for a nil Ignore).
func (i *Ignore) Patterns() []string {
	if i == nil {
		return nil
	}
	return append([]string(nil), i.patterns...)
}

// Excluded reports whether rel (slash-separated, relative to the context)
// is excluded, by its own match or a parent directory's.
func (i *Ignore) Excluded(rel string) bool {
	if i == nil || i.pm == nil {
		return false
	}
	rel = cleanRel(rel)
	if rel == "." {
		return false
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	// Patterns were validated in New, so matching cannot fail.
	ok, _ := i.pm.MatchesOrParentMatches(rel)
	return ok
}

// ExcludedDir reports whether directory rel is excluded and, if so, whether
// a "!" exception might still include something below it, in which case a
// walk must descend instead of pruning. The second result is conservative.
func (i *Ignore) ExcludedDir(rel string) (excluded bool, mayHaveIncludedChildren bool) {
	if !i.Excluded(rel) {
		return false, false
	}
	if !i.pm.Exclusions() {
		return true, false
	}
	dirParts := strings.Split(cleanRel(rel), "/")
	for _, p := range i.pm.Patterns() {
		if p.Exclusion() && (regexpLike(p.String()) || mayMatchBelow(strings.Split(p.String(), "/"), dirParts)) {
			return true, true
		}
	}
	return true, false
}

// regexpLike reports whether patternmatcher reads a pattern as a regular expression where
// path.Match would not: it leaves | { } unescaped (its escape table misses them, so "a|*t"
// matches every path ending in t) and keeps a backslash before a letter ("\d" is a digit).
// mayMatchBelow cannot follow such a pattern, so it is taken to match anything.
func regexpLike(pattern string) bool { return strings.ContainsAny(pattern, `|{}\`) }

// mayMatchBelow reports whether a pattern could match a path inside dir:
// its leading components match dir's, or a "**" makes it open-ended.
func mayMatchBelow(pattern, dir []string) bool {
	for k, part := range pattern {
		if strings.Contains(part, "**") {
			return true
		}
		if k >= len(dir) {
			return true
		}
		if ok, err := path.Match(part, dir[k]); err != nil || !ok {
			return false
		}
	}
	// The pattern names dir itself or one of its parents.
	return true
}

func cleanRel(rel string) string {
	rel = path.Clean("/" + filepath.ToSlash(rel))
	if rel == "/" {
		return "."
	}
	return rel[1:]
}
