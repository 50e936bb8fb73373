package copier

import (
	"context"
	"fmt"
)

// Add performs ADD: like Copy, and also
//   - a local tar archive (plain, gzip, bzip2, xz or zstd, recognised by
//     content, not name) is extracted into the destination directory;
//   - an http(s) URL is downloaded (never extracted) with mode 0600 unless
//     --chmod, the mtime from Last-Modified when present, and o.Checksum
//     verified before anything is written;
//   - a Git URL is an error: Git sources are not supported.
func Add(ctx context.Context, r Request, o AddOptions) ([]string, error) {
	j, err := newJob(ctx, r, "ADD")
	if err != nil {
		return nil, err
	}
	sum, err := parseChecksum(o.Checksum)
	if err != nil {
		return nil, err
	}
	type item struct {
		url string
		src source
	}
	var items []item
	for _, s := range r.Sources {
		switch {
		case isGitURL(s):
			return nil, fmt.Errorf("ADD %s: Git sources are not supported%s", s, keepGitNote(o.KeepGitDir))
		case isURL(s):
			items = append(items, item{url: s})
		default:
			if sum != nil {
				return nil, fmt.Errorf("ADD %s: checksum can't be specified for non-HTTP(S) sources", s)
			}
			got, err := j.expandSource(s)
			if err != nil {
				return nil, err
			}
			for _, g := range got {
				items = append(items, item{src: g})
			}
		}
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("ADD failed: no source files were specified")
	}
	d, err := j.resolveDest()
	if err != nil {
		return nil, err
	}
	multi := len(items) > 1
	if err := j.checkMulti(len(items), d); err != nil {
		return nil, err
	}
	for _, it := range items {
		if err := j.checkCtx(); err != nil {
			return nil, err
		}
		if it.url != "" {
			if err := j.download(it.url, d, d.dirHint || d.isDir || multi, sum, o.Client); err != nil {
				return nil, fmt.Errorf("ADD %s to %s: %w", it.url, d.written, err)
			}
			continue
		}
		if err := j.addLocal(it.src, d, multi, o.Chown); err != nil {
			return nil, err
		}
	}
	return reduce(j.written), nil
}

// addLocal extracts a local archive or else copies the source as COPY does.
func (j *job) addLocal(s source, d dest, multi, chown bool) error {
	if !s.info.Mode().IsRegular() {
		return j.copySource(s, d, multi)
	}
	archive, err := isArchive(s.host)
	if err != nil {
		return fmt.Errorf("ADD %s: %w", s.rel, err)
	}
	if !archive {
		return j.copySource(s, d, multi)
	}
	if d.exists && !d.isDir {
		return fmt.Errorf("ADD %s to %s: cannot extract an archive into %s: not a directory", s.rel, d.written, d.img)
	}
	if err := j.mkdirParents(d.host); err != nil {
		return fmt.Errorf("ADD %s to %s: %w", s.rel, d.written, err)
	}
	if err := j.extract(s.host, s.rel, d, chown); err != nil {
		return fmt.Errorf("ADD %s to %s: %w", s.rel, d.written, err)
	}
	return nil
}

func keepGitNote(keep bool) string {
	if keep {
		return " (--keep-git-dir has no effect)"
	}
	return ""
}
