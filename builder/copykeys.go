package builder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kilnbuild/kiln/buildcontext"
	"github.com/kilnbuild/kiln/cache"
	"github.com/kilnbuild/kiln/internal/copier"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// copyKeySpec is what a COPY or ADD reads, for its cache key.
type copyKeySpec struct {
	sd       instructions.SourcesAndDest
	from     string   // COPY --from
	excludes []string // --exclude
	checksum string   // ADD --checksum
	parents  bool     // COPY --parents
	add      bool
}

// copyInputs are the inputs of a COPY/ADD beyond its text: each source file (after
// .dockerignore and --exclude), a heredoc's content, or the digest of the stage or image a
// COPY --from reads. An ADD of a URL is only keyed by its --checksum; without one it is an error.
func (b *build) copyInputs(ctx context.Context, stage int, c copyKeySpec) ([]cache.Input, error) {
	var out []cache.Input
	for _, hd := range c.sd.SourceContents {
		out = append(out, cache.Digest("heredoc:"+hd.Path, []byte(hd.Data)))
	}
	if c.from != "" {
		if files, ok, err := b.namedFileInputs(ctx, stage, c); ok || err != nil {
			return append(out, files...), err
		}
		d, err := b.fromDigest(ctx, stage, c.from)
		if err != nil {
			return nil, err
		}
		return append(out, cache.Text(cache.InputFrom, d)), nil
	}
	var local []string
	for _, src := range c.sd.SourcePaths {
		if c.add {
			in, isGit, err := b.gitInput(ctx, src, c.checksum)
			if err != nil {
				return nil, err
			}
			if isGit {
				out = append(out, in)
				continue
			}
		}
		if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") || strings.HasPrefix(src, "git@") {
			if c.checksum == "" {
				return nil, fmt.Errorf("ADD %s has no --checksum, so its content is unknown before downloading it", src)
			}
			out = append(out, cache.Text("url:"+src, c.checksum))
			continue
		}
		local = append(local, src)
	}
	if len(local) == 0 {
		return out, nil
	}
	files, err := b.localInputs(local, c)
	if err != nil {
		return nil, err
	}
	return append(out, files...), nil
}

// gitInput is the input of an ADD source that is a Git repository: the commit its ref
// resolves to now (so a new commit on a branch misses), with the sub-directory and the options
// that change what is copied.
func (b *build) gitInput(ctx context.Context, src, checksum string) (cache.Input, bool, error) {
	ref, ok, err := buildcontext.ParseGitRef(src)
	if !ok || err != nil {
		return cache.Input{}, ok, err
	}
	if checksum != "" {
		ref.Checksum = checksum
	}
	commit, err := b.gitCommit(ctx, ref)
	if err != nil {
		return cache.Input{}, true, err
	}
	keep := ref.KeepGitDir != nil && *ref.KeepGitDir
	sub := ref.Submodules == nil || *ref.Submodules
	// Credentials in the URL stay out of the key: cache entries store their inputs.
	return cache.Text("git:"+buildcontext.Redact(ref.Remote), fmt.Sprintf("commit=%s subdir=%q keep-git-dir=%v submodules=%v",
		commit, ref.SubDir, keep, sub)), true, nil
}

// localInputs describes the context files the sources copy.
func (b *build) localInputs(local []string, c copyKeySpec) ([]cache.Input, error) {
	var excludedDir func(string) (bool, bool)
	if len(c.excludes) == 0 {
		excludedDir = b.dockerignore.ExcludedDir
	}
	return dirInputs(b.o.contextDir, local, b.dockerignore.Excluded, excludedDir, c)
}

// dirInputs describes the files of dir that the sources copy, after exclude and --exclude.
func dirInputs(dir string, local []string, exclude func(string) bool, excludedDir func(string) (bool, bool),
	c copyKeySpec) ([]cache.Input, error) {
	req := copier.Request{Sources: local, Exclude: exclude}
	if err := withExcludes(&req, c.excludes); err != nil {
		return nil, err
	}
	if req.Exclude == nil {
		req.Exclude = func(string) bool { return false }
	}
	if c.parents {
		return parentsInputs(dir, local, req.Exclude, excludedDir)
	}
	return cache.FileInputs(cache.Sources{Root: dir, Paths: local, Exclude: req.Exclude, ExcludeDir: excludedDir})
}

// namedFileInputs are the inputs of COPY --from=NAME where NAME is a directory context: the
// files it copies from there, as for the build context (ok false for anything else).
func (b *build) namedFileInputs(ctx context.Context, stage int, c copyKeySpec) ([]cache.Input, bool, error) {
	if _, isStage := b.stageIndex(c.from, stage); isStage {
		return nil, false, nil
	}
	nc, ok := b.namedContext(c.from)
	if !ok {
		return nil, false, nil
	}
	if err := b.resolveContext(ctx, nc); err != nil || nc.dir == "" {
		return nil, err != nil, err
	}
	files, err := dirInputs(nc.dir, c.sd.SourcePaths, nc.exclude, nil, c)
	return append([]cache.Input{cache.Text(cache.InputFrom, "context:"+nc.Name)}, files...), true, err
}

// parentsInputs describes what COPY --parents sources copy: each match, and the directories
// kept above it (whose metadata the copies get), with the source's own selection rules.
func parentsInputs(root string, srcs []string, exclude func(string) bool,
	excludedDir func(string) (bool, bool)) ([]cache.Input, error) {
	var out []cache.Input
	for _, src := range srcs {
		p, err := copier.NewParentsSource(src)
		if err != nil {
			return nil, err
		}
		unused := func(rel string) bool {
			copied, walks := p.Test(rel)
			return !copied && !walks
		}
		// A directory on the way to a match counts (the copy takes its metadata); a file
		// there that no pattern matches does not.
		skipped := func(rel string) bool {
			copied, walks := p.Test(rel)
			return !copied && (!walks || !isDir(filepath.Join(root, filepath.FromSlash(rel))))
		}
		files, err := cache.FileInputs(cache.Sources{Root: root, Paths: []string{p.Prefix()},
			Exclude: func(rel string) bool { return skipped(rel) || exclude(rel) },
			ExcludeDir: func(rel string) (bool, bool) {
				if unused(rel) {
					return true, false
				}
				if excludedDir != nil {
					return excludedDir(rel)
				}
				return true, true
			}})
		if err != nil {
			return nil, err
		}
		out = append(out, files...)
	}
	return out, nil
}

func isDir(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.IsDir()
}
