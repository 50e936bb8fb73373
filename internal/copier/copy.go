package copier

import (
	"context"
	"fmt"
	"path/filepath"
)

// Copy performs COPY: it copies r.Sources from r.SrcRoot to r.Dest inside
// r.Root. It returns the image paths it wrote, reduced to the top-most ones
// (a directory it created stands for its whole subtree), sorted, so the
// snapshotter can snapshot exactly those subtrees.
func Copy(ctx context.Context, r Request) ([]string, error) {
	j, err := newJob(ctx, r, "COPY")
	if err != nil {
		return nil, err
	}
	if r.Parents {
		if err := j.copyParents(); err != nil {
			return nil, err
		}
		return reduce(j.written), nil
	}
	srcs, err := j.expandAll(r.Sources)
	if err != nil {
		return nil, err
	}
	d, err := j.resolveDest()
	if err != nil {
		return nil, err
	}
	if err := j.checkMulti(len(srcs), d); err != nil {
		return nil, err
	}
	for _, s := range srcs {
		if err := j.copySource(s, d, len(srcs) > 1); err != nil {
			return nil, err
		}
	}
	return reduce(j.written), nil
}

// expandAll expands every written source; at least one must match.
func (j *job) expandAll(written []string) ([]source, error) {
	var out []source
	for _, w := range written {
		got, err := j.expandSource(w)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s failed: no source files were specified", j.verb)
	}
	return out, nil
}

// checkMulti enforces that several sources go into a directory.
func (j *job) checkMulti(n int, d dest) error {
	if n > 1 && !d.dirHint && !d.isDir {
		return fmt.Errorf("When using %s with more than one source file, the destination must be a directory and end with a / (destination %s)", j.verb, d.written)
	}
	return nil
}

// copySource copies one local source to the destination.
func (j *job) copySource(s source, d dest, multi bool) error {
	if err := j.checkCtx(); err != nil {
		return err
	}
	if err := j.placeSource(s, d, multi); err != nil {
		return fmt.Errorf("%s %s to %s: %w", j.verb, s.rel, d.written, err)
	}
	return nil
}

func (j *job) placeSource(s source, d dest, multi bool) error {
	if j.ignored(d.img) {
		return nil // the whole destination is on the ignore list
	}
	intoDir := d.dirHint || d.isDir || multi
	if s.info.IsDir() {
		if d.isDir || multi {
			// Contents go into a directory that exists (or is shared by all
			// sources): it keeps its own metadata.
			if err := j.mkdirParents(d.host); err != nil {
				return err
			}
			return j.copyDir(s.host, s.rel, s.info, d.host, existingDir(), s.excluded, true)
		}
		// A single directory to a new (or non-directory) path: the path
		// becomes a copy of the source directory, metadata included.
		if err := j.mkdirParents(filepath.Dir(d.host)); err != nil {
			return err
		}
		return j.copyDir(s.host, s.rel, s.info, d.host, existingDir(), s.excluded, false)
	}
	target := d.host
	if intoDir {
		if err := j.mkdirParents(d.host); err != nil {
			return err
		}
		target = filepath.Join(d.host, s.name)
	} else if err := j.mkdirParents(filepath.Dir(d.host)); err != nil {
		return err
	}
	img := j.imagePath(target)
	if j.ignored(img) {
		return nil
	}
	j.record(img)
	return j.writeNonDir(s.host, s.info, target)
}
