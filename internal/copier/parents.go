package copier

import (
	"fmt"
	"path"
	"strings"

	"github.com/moby/patternmatcher"
)

// COPY --parents, as BuildKit does it: a source keeps its path below the destination, which
// is always a directory. The path kept is the source's path relative to SrcRoot, or, when the
// source holds a "/./" pivot, its path relative to the pivot: `COPY --parents x/./y/a.txt /d/`
// writes /d/y/a.txt. The part after the pivot (all of the source without one) is a pattern
// with BuildKit's include-pattern syntax, so "**" matches any number of directories; the part
// before the pivot may use filepath.Match wildcards per component. Directories between the
// pivot and a match are created with their source's metadata, as any copied directory;
// matched directories are copied whole, symlinks among the matches are copied as symlinks.
// A source without wildcards must exist; .dockerignore and --exclude apply as for COPY.

// ParentsSource is one COPY --parents source as written. It is not safe for concurrent use.
type ParentsSource struct {
	base    []string // components of the part before the pivot, wildcards allowed
	pattern string   // the part after it, "" for everything below the base
	literal string   // the pattern's leading components without wildcards
	match   *patternmatcher.PatternMatcher
}

// NewParentsSource parses a COPY --parents source.
func NewParentsSource(src string) (*ParentsSource, error) {
	base, pattern, pivot := strings.Cut(src, "/./")
	if !pivot {
		base, pattern = ".", src
	}
	baseRel, err := cleanSource(base)
	if err != nil {
		return nil, err
	}
	p := &ParentsSource{pattern: strings.Trim(path.Clean("/"+pattern), "/")}
	if baseRel != "." {
		p.base = strings.Split(baseRel, "/")
	}
	for _, c := range strings.Split(p.pattern, "/") {
		if hasWildcards(c) {
			break
		}
		p.literal = path.Join(p.literal, c)
	}
	if p.pattern != "" {
		if p.match, err = patternmatcher.New([]string{p.pattern}); err != nil {
			return nil, fmt.Errorf("--parents %s: %w", src, err)
		}
	}
	return p, nil
}

// Prefix is the deepest directory (relative to SrcRoot, "." for itself) that holds every
// path the source copies, and the directories kept above them.
func (p *ParentsSource) Prefix() string {
	out := "."
	for _, c := range p.base {
		if hasWildcards(c) {
			return out
		}
		out = path.Join(out, c)
	}
	return out
}

// Test reports, for a path relative to SrcRoot, whether the source copies it (a match, or
// below one) and whether it may hold something the source copies (so a walk goes into it).
func (p *ParentsSource) Test(rel string) (copied, mayHold bool) {
	var comps []string
	if rel != "." && rel != "" {
		comps = strings.Split(rel, "/")
	}
	for i, b := range p.base {
		if i == len(comps) {
			return false, true // above the pivot
		}
		if ok, _ := path.Match(b, comps[i]); !ok {
			return false, false
		}
	}
	r := strings.Join(comps[len(p.base):], "/")
	if r == "" {
		return false, true // the pivot itself: its contents are copied, not it
	}
	if p.match == nil {
		return true, true
	}
	copied, _ = p.match.MatchesOrParentMatches(r)
	lit := p.literal
	mayHold = copied || lit == "" || lit == r || strings.HasPrefix(lit, r+"/") || strings.HasPrefix(r, lit+"/")
	return copied, mayHold
}

// exact reports whether the source names one path without wildcards (which must then exist).
func (p *ParentsSource) exact() (string, bool) {
	for _, c := range p.base {
		if hasWildcards(c) {
			return "", false
		}
	}
	if p.pattern == "" || hasWildcards(p.pattern) {
		return "", false
	}
	return path.Join(append(append([]string{}, p.base...), p.pattern)...), true
}

// bases lists the directories the pivot names (several when it has wildcards).
func (j *job) parentsBases(p *ParentsSource) ([]source, error) {
	rels := []string{"."}
	if len(p.base) > 0 {
		var err error
		if rels, err = j.glob(path.Join(p.base...)); err != nil {
			return nil, err
		}
	}
	var out []source
	for _, rel := range rels {
		s, err := j.statSource(rel)
		if err != nil {
			continue // a wildcard pivot that matched something gone, or nothing
		}
		if !s.info.IsDir() {
			if !hasWildcards(path.Join(p.base...)) {
				return nil, fmt.Errorf("%s before /./ is not a directory", rel)
			}
			continue
		}
		out = append(out, s)
	}
	return out, nil
}

// copyParents performs COPY --parents.
func (j *job) copyParents() error {
	d, err := j.resolveDest()
	if err != nil {
		return err
	}
	if d.exists && !d.isDir {
		return fmt.Errorf("COPY --parents: destination %s is not a directory", d.written)
	}
	if j.ignored(d.img) {
		return nil
	}
	if err := j.mkdirParents(d.host); err != nil {
		return err
	}
	for _, src := range j.req.Sources {
		if err := j.copyParentsSource(src, d); err != nil {
			return err
		}
	}
	if j.selected == 0 {
		return fmt.Errorf("COPY failed: no source files were specified (no file matches %s)", strings.Join(j.req.Sources, " "))
	}
	return nil
}

// copyParentsSource copies what one source selects into the destination directory.
func (j *job) copyParentsSource(src string, d dest) error {
	p, err := NewParentsSource(src)
	if err != nil {
		return err
	}
	if rel, ok := p.exact(); ok {
		if _, err := j.statSource(rel); err != nil {
			return fmt.Errorf("stat %s: %w", src, err)
		}
		if j.excluded(rel) && !j.anyIncludedBelow(rel) {
			return fmt.Errorf("stat %s: file does not exist (excluded by .dockerignore)", src)
		}
	}
	bases, err := j.parentsBases(p)
	if err != nil {
		return fmt.Errorf("COPY --parents %s: %w", src, err)
	}
	j.parents = p
	defer func() { j.parents = nil }()
	for _, b := range bases {
		if err := j.copyDir(b.host, b.rel, b.info, d.host, existingDir(), true, true); err != nil {
			return fmt.Errorf("COPY --parents %s to %s: %w", src, d.written, err)
		}
	}
	return nil
}

// parentsFilter applies the --parents selection to one entry of the walk: skip says the
// entry and everything below it are left out; unselected says it is only created when
// something below it is copied.
func (j *job) parentsFilter(rel string) (skip, unselected bool) {
	if j.parents == nil {
		return false, false
	}
	copied, may := j.parents.Test(rel)
	if copied && !j.excluded(rel) {
		j.selected++
	}
	return !copied && !may, !copied
}

// anyIncludedBelow reports whether an excluded directory source holds an entry that a "!"
// exception includes again.
func (j *job) anyIncludedBelow(rel string) bool {
	s, err := j.statSource(rel)
	return err == nil && s.info.IsDir() && j.anyIncluded(s.host, rel)
}
