package copier

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// Add performs ADD: like Copy, and also
//   - a local tar archive (plain, gzip, bzip2, xz or zstd, recognised by
//     content, not name) is extracted into the destination directory, unless
//     --unpack=false;
//   - an http(s) URL is downloaded with mode 0600 unless --chmod, the mtime
//     from Last-Modified when present, and o.Checksum verified before anything
//     is written; with --unpack=true an archive is extracted instead;
//   - a source o.Fetch takes (a Git repository the caller checked out) is
//     copied as a directory;
//   - any other Git URL is an error.
func Add(ctx context.Context, r Request, o AddOptions) ([]string, error) {
	j, err := newJob(ctx, r, "ADD")
	if err != nil {
		return nil, err
	}
	sum, err := parseChecksum(o.Checksum)
	if err != nil {
		return nil, err
	}
	items, err := j.addItems(r.Sources, o, sum)
	if err != nil {
		return nil, err
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
		if err := j.addItem(it, d, multi, sum, o); err != nil {
			return nil, err
		}
	}
	return reduce(j.written), nil
}

// addItem is one ADD source after expansion.
type addItem struct {
	url     string   // a remote file
	src     source   // a local source, or a fetched one
	fetched *Fetched // the caller fetched it (src is its path)
	written string   // the source as written, for messages
}

// addItems expands the sources of an ADD.
func (j *job) addItems(sources []string, o AddOptions, sum *checksum) ([]addItem, error) {
	var items []addItem
	for _, s := range sources {
		if o.Fetch != nil {
			f, ok, err := o.Fetch(s)
			if err != nil {
				return nil, fmt.Errorf("ADD %s: %w", s, err)
			}
			if ok {
				src, err := fetchedSource(f)
				if err != nil {
					return nil, fmt.Errorf("ADD %s: %w", s, err)
				}
				items = append(items, addItem{src: src, fetched: &f, written: s})
				continue
			}
		}
		switch {
		case isGitURL(s):
			return nil, fmt.Errorf("ADD %s: Git sources are not supported%s", s, keepGitNote(o.KeepGitDir))
		case isURL(s):
			items = append(items, addItem{url: s, written: s})
		default:
			if sum != nil {
				return nil, fmt.Errorf("ADD %s: checksum can't be specified for non-HTTP(S) sources", s)
			}
			got, err := j.expandSource(s)
			if err != nil {
				return nil, err
			}
			for _, g := range got {
				items = append(items, addItem{src: g, written: s})
			}
		}
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("ADD failed: no source files were specified")
	}
	return items, nil
}

// fetchedSource describes a fetched path as a source whose own root it is.
func fetchedSource(f Fetched) (source, error) {
	fi, err := os.Lstat(f.Path)
	if err != nil {
		return source{}, err
	}
	return source{rel: ".", name: filepath.Base(f.Path), host: f.Path, info: fi}, nil
}

// addItem adds one source to the destination.
func (j *job) addItem(it addItem, d dest, multi bool, sum *checksum, o AddOptions) error {
	intoDir := d.dirHint || d.isDir || multi
	switch {
	case it.url != "":
		if err := j.download(it.url, d, intoDir, sum, o); err != nil {
			return fmt.Errorf("ADD %s to %s: %w", it.url, d.written, err)
		}
		return nil
	case it.fetched != nil:
		saved := j.req.Exclude
		j.req.Exclude = it.fetched.Exclude
		defer func() { j.req.Exclude = saved }()
		if err := j.placeSource(it.src, d, multi); err != nil {
			return fmt.Errorf("ADD %s to %s: %w", it.written, d.written, err)
		}
		return nil
	}
	return j.addLocal(it.src, d, multi, o)
}

// addLocal extracts a local archive or else copies the source as COPY does.
func (j *job) addLocal(s source, d dest, multi bool, o AddOptions) error {
	if !s.info.Mode().IsRegular() || (o.Unpack != nil && !*o.Unpack) {
		return j.copySource(s, d, multi)
	}
	chown := o.Chown
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
