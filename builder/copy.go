package builder

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/internal/copier"
	"github.com/kilnbuild/kiln/internal/users"
	"github.com/kilnbuild/kiln/registry"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// copyJob is a COPY or ADD ready to run against a root: the copier's request (its Root set
// to the build's root) and the copier call.
type copyJob struct {
	req  copier.Request
	sd   instructions.SourcesAndDest
	run  func(copier.Request) ([]string, error)
	link bool // --link: run against an empty directory, which becomes the layer (copylink.go)
}

// copyCommand prepares COPY.
func (b *build) copyCommand(ctx context.Context, s *stageState, c *instructions.CopyCommand) (copyJob, error) {
	req, err := b.copyRequest(s, c.SourcesAndDest, c.Chown, c.Chmod, c.Link)
	if err != nil {
		return copyJob{}, err
	}
	req.Parents = c.Parents
	if c.From != "" {
		src, err := b.fromSource(ctx, s, c.From)
		if err != nil {
			return copyJob{}, err
		}
		req.SrcRoot, req.Exclude = src.dir, src.exclude
		if c.Chown == "" && !src.context {
			req.UID, req.GID = -1, -1 // files from another stage or image keep their owners
		}
	}
	if err := withExcludes(&req, c.ExcludePatterns); err != nil {
		return copyJob{}, err
	}
	run := func(r copier.Request) ([]string, error) { return copier.Copy(ctx, r) }
	return copyJob{req: req, sd: c.SourcesAndDest, run: run, link: c.Link}, nil
}

// addCommand prepares ADD (local files, local archives unpacked, remote URLs, Git
// repositories).
func (b *build) addCommand(ctx context.Context, s *stageState, c *instructions.AddCommand) (copyJob, error) {
	req, err := b.copyRequest(s, c.SourcesAndDest, c.Chown, c.Chmod, c.Link)
	if err != nil {
		return copyJob{}, err
	}
	if err := withExcludes(&req, c.ExcludePatterns); err != nil {
		return copyJob{}, err
	}
	o, err := b.addOptions(ctx, c)
	if err != nil {
		return copyJob{}, err
	}
	run := func(r copier.Request) ([]string, error) {
		defer b.removeGitDirs()
		return copier.Add(ctx, r, o)
	}
	return copyJob{req: req, sd: c.SourcesAndDest, run: run, link: c.Link}, nil
}

// copyJobOf prepares a COPY or ADD.
func (b *build) copyJobOf(ctx context.Context, s *stageState, cmd instructions.Command) (copyJob, error) {
	if c, ok := cmd.(*instructions.AddCommand); ok {
		return b.addCommand(ctx, s, c)
	}
	return b.copyCommand(ctx, s, cmd.(*instructions.CopyCommand))
}

// runCopy runs a prepared COPY or ADD into the root and returns the image paths it wrote.
func (b *build) runCopy(ctx context.Context, s *stageState, j copyJob) ([]string, error) {
	return b.doCopy(ctx, s, j.sd, j.req, j.run)
}

// copyRequest fills what COPY and ADD share: destination, owner, mode, the context as source.
// With --link, --chown must be numeric: the files are copied into an empty filesystem, with
// no /etc/passwd to read names from (BuildKit's rule).
func (b *build) copyRequest(s *stageState, sd instructions.SourcesAndDest, chown, chmod string, link bool) (copier.Request, error) {
	req := copier.Request{
		SrcRoot: b.o.contextDir,
		Sources: sd.SourcePaths,
		Exclude: b.dockerignore.Excluded,
		Root:    b.root,
		Dest:    sd.DestPath,
		WorkDir: s.cfg.Config.WorkingDir,
		Ignore:  b.ignore.Ignored,
	}
	if req.WorkDir == "" {
		req.WorkDir = "/"
	}
	if chown != "" {
		uid, gid, err := b.resolveChown(chown, link)
		if err != nil {
			return req, err
		}
		req.UID, req.GID = uid, gid
	}
	if chmod != "" {
		m, err := strconv.ParseUint(chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return req, fmt.Errorf("invalid --chmod=%s: must be an octal mode like 0755", chmod)
		}
		mode := os.FileMode(m&0o777) | unixSpecialBits(m)
		req.Mode = &mode
	}
	return req, nil
}

// resolveChown resolves --chown in the root, or, with --link, only as numbers.
func (b *build) resolveChown(chown string, link bool) (int, int, error) {
	if !link {
		return users.ResolveChown(b.root, chown)
	}
	u, g, _ := strings.Cut(chown, ":")
	for _, part := range []string{u, g} {
		if _, err := strconv.ParseUint(part, 10, 32); part != "" && err != nil {
			return 0, 0, fmt.Errorf("--chown=%s: user and group names can't be resolved when used with --link, use numeric uid[:gid] instead", chown)
		}
	}
	return users.ResolveChown("", chown)
}

// withExcludes adds COPY/ADD --exclude patterns to what the request skips.
func withExcludes(req *copier.Request, patterns []string) error {
	if len(patterns) == 0 {
		return nil
	}
	ex, err := dockerfile.NewIgnore(patterns)
	if err != nil {
		return fmt.Errorf("--exclude: %w", err)
	}
	// Patterns are relative to the source being copied (BuildKit's rule); rel is relative to
	// the context, so also try it with each plain source directory stripped off.
	var bases []string
	for _, src := range req.Sources {
		src = strings.Trim(path.Clean("/"+src), "/")
		if src != "" && !strings.ContainsAny(src, "*?[") {
			bases = append(bases, src+"/")
		}
	}
	prev := req.Exclude
	req.Exclude = func(rel string) bool {
		if (prev != nil && prev(rel)) || ex.Excluded(rel) {
			return true
		}
		for _, b := range bases {
			if r, ok := strings.CutPrefix(rel, b); ok && ex.Excluded(r) {
				return true
			}
		}
		return false
	}
	return nil
}

func unixSpecialBits(m uint64) os.FileMode {
	var out os.FileMode
	if m&0o4000 != 0 {
		out |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= os.ModeSticky
	}
	return out
}

// doCopy runs a copy and returns the paths to snapshot: the copier reports the smallest set of
// subtrees it changed (a directory it created stands for everything below it).
func (b *build) doCopy(ctx context.Context, s *stageState, sd instructions.SourcesAndDest, req copier.Request,
	copyFn func(copier.Request) ([]string, error)) ([]string, error) {
	if len(sd.SourceContents) > 0 {
		// COPY <<EOF /dest: the heredocs become files in a scratch context.
		dir, err := os.MkdirTemp(filepath.Join(b.workDir, "tmp"), "heredoc-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		req.SrcRoot, req.Exclude, req.Sources = dir, nil, nil
		for _, sc := range sd.SourceContents {
			if err := os.WriteFile(filepath.Join(dir, path.Base(sc.Path)), []byte(sc.Data), 0o644); err != nil {
				return nil, err
			}
			req.Sources = append(req.Sources, path.Base(sc.Path))
		}
	}
	if dest := path.Join(req.WorkDir, req.Dest); path.IsAbs(req.Dest) && b.ignore.Ignored(path.Clean(req.Dest)) ||
		!path.IsAbs(req.Dest) && b.ignore.Ignored(dest) {
		b.warn("%s is an ignored path (the executor's own directory, a mount, or --ignore-path): nothing is copied there", req.Dest)
	}
	written, err := copyFn(req)
	if err != nil {
		return nil, err
	}
	if written == nil {
		written = []string{}
	}
	return written, nil
}

// firstMissing returns the shallowest ancestor-or-self of an image path that does not exist in
// root ("" when it all exists). Symlinks on the way are resolved inside the root.
func firstMissing(root, p string) (string, error) {
	p = path.Clean("/" + p)
	cur := "/"
	for _, part := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		if part == "" {
			continue
		}
		next := path.Join(cur, part)
		host, err := securejoin.SecureJoin(root, next)
		if err != nil {
			return "", err
		}
		if _, err := os.Lstat(host); errors.Is(err, fs.ErrNotExist) {
			rel, err := filepath.Rel(root, host)
			if err != nil {
				return "", err
			}
			return "/" + filepath.ToSlash(rel), nil
		} else if err != nil {
			return "", err
		}
		// continue from the resolved location so a symlinked directory is followed inside root
		rel, _ := filepath.Rel(root, host)
		cur = "/" + filepath.ToSlash(rel)
	}
	return "", nil
}

// makeWorkdir creates a WORKDIR (and missing parents) owned by the stage's USER, returning the
// shallowest directory it created.
func (b *build) makeWorkdir(s *stageState, dir string) (string, error) {
	top, err := firstMissing(b.root, dir)
	if err != nil || top == "" {
		return "", err
	}
	uid, gid := uint32(0), uint32(0)
	if s.cfg.Config.User != "" {
		id, err := users.Resolve(b.root, s.cfg.Config.User)
		if err != nil {
			return "", err
		}
		uid, gid = id.UID, id.GID
	}
	return top, mkdirAllInRoot(b.root, dir, uid, gid)
}

// mkdirAllInRoot creates the image directory dir and its missing parents (0755, owned by
// uid:gid), resolving symlinks on the way inside root.
func mkdirAllInRoot(root, dir string, uid, gid uint32) error {
	cur := "/"
	for _, part := range strings.Split(strings.TrimPrefix(path.Clean("/"+dir), "/"), "/") {
		if part == "" {
			continue
		}
		cur = path.Join(cur, part)
		host, err := securejoin.SecureJoin(root, cur)
		if err != nil {
			return err
		}
		if _, err := os.Lstat(host); err == nil {
			continue
		}
		if err := os.Mkdir(host, 0o755); err != nil {
			return err
		}
		if int(uid) == os.Geteuid() && int(gid) == os.Getegid() {
			continue // already ours; a builder not running as root can still create it
		}
		if err := os.Lchown(host, int(uid), int(gid)); err != nil {
			return err
		}
	}
	return nil
}

// fromSource is what COPY --from (or a RUN mount's from=) reads.
type fromSource struct {
	dir     string
	exclude func(rel string) bool // a named directory context's .dockerignore; nil: nothing
	context bool                  // a directory context: files are copied as from the build context
}

// fromSource resolves --from: an earlier stage, a named context (--build-context), or an image.
func (b *build) fromSource(ctx context.Context, s *stageState, from string) (fromSource, error) {
	if _, isStage := b.stageIndex(from, s.index); !isStage {
		if nc, ok := b.namedContext(from); ok {
			return b.namedSource(ctx, nc)
		}
	}
	dir, err := b.fromDir(ctx, s, from)
	return fromSource{dir: dir}, err
}

// fromDir returns a directory holding the filesystem COPY --from reads: an earlier stage's, or
// an image's (pulled and unpacked once per build).
func (b *build) fromDir(ctx context.Context, s *stageState, from string) (string, error) {
	if _, isStage := b.stageIndex(from, s.index); !isStage {
		if nc, ok := b.namedContext(from); ok {
			src, err := b.namedSource(ctx, nc)
			return src.dir, err
		}
	}
	if idx, ok := b.stageIndex(from, s.index); ok {
		if dir, ok := b.saved[idx]; ok {
			return dir, nil
		}
		r, ok := b.results[idx]
		if !ok {
			return "", fmt.Errorf("--from=%s: stage %d was not built", from, idx)
		}
		dir := filepath.Join(b.workDir, "stages", strconv.Itoa(idx))
		if err := b.extractFresh(ctx, r.image, dir); err != nil {
			return "", fmt.Errorf("--from=%s: %w", from, err)
		}
		b.saved[idx] = dir
		return dir, nil
	}
	if dir, ok := b.images[from]; ok {
		return dir, nil
	}
	img, err := registry.Pull(ctx, from, b.o.pull...)
	if err != nil {
		return "", fmt.Errorf("--from=%s: %w", from, err)
	}
	if b.o.baseCache != nil {
		img = b.o.baseCache.Image(img)
	}
	d, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("--from=%s: %w", from, err)
	}
	dir := filepath.Join(b.workDir, "images", d.Hex)
	if err := b.extractFresh(ctx, img, dir); err != nil {
		return "", fmt.Errorf("--from=%s: %w", from, err)
	}
	b.images[from] = dir
	return dir, nil
}

// extractFresh unpacks img into an empty dir.
func (b *build) extractFresh(ctx context.Context, img v1.Image, dir string) error {
	if err := freshDir(dir); err != nil {
		return err
	}
	return b.extractImage(ctx, img, dir)
}
