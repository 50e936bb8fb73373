package copier

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// dest is the destination of an instruction resolved inside the root.
type dest struct {
	written string // as written, for messages
	host    string // resolved host path, symlinks followed within the root
	img     string // image path of host
	dirHint bool   // written as a directory ("/" suffix, "." ...)
	exists  bool
	isDir   bool
}

// resolveDest resolves Dest (relative to WorkDir) inside the root.
func (j *job) resolveDest() (dest, error) {
	d := j.req.Dest
	if d == "" {
		return dest{}, fmt.Errorf("%s: no destination given", j.verb)
	}
	p := d
	if !path.IsAbs(p) {
		p = path.Join("/", j.req.WorkDir, p)
	}
	p = path.Clean("/" + p)
	host, err := securejoin.SecureJoin(j.root, filepath.FromSlash(p))
	if err != nil {
		return dest{}, fmt.Errorf("resolve destination %s: %w", d, err)
	}
	out := dest{written: d, host: host, img: j.imagePath(host), dirHint: isDirHint(d)}
	fi, err := os.Lstat(host)
	switch {
	case err == nil:
		out.exists, out.isDir = true, fi.IsDir()
	case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrInvalid) && !isNotDir(err):
		return dest{}, fmt.Errorf("stat destination %s: %w", d, err)
	}
	if out.dirHint && out.exists && !out.isDir {
		return dest{}, fmt.Errorf("destination %s is not a directory (%s exists as a file)", d, out.img)
	}
	return out, nil
}

// isDirHint reports whether a written destination names a directory.
func isDirHint(d string) bool {
	return strings.HasSuffix(d, "/") || d == "." || d == ".." ||
		strings.HasSuffix(d, "/.") || strings.HasSuffix(d, "/..")
}

// mkdirParents creates host (a resolved path under the root) and any missing
// parents as 0755 directories owned by the parent owner. It records the
// topmost directory it created.
func (j *job) mkdirParents(host string) error {
	rel, err := filepath.Rel(j.root, host)
	if err != nil || rel == "." {
		return err
	}
	cur := j.root
	created := false
	uid, gid := j.parentOwner()
	for _, c := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, c)
		fi, err := os.Lstat(cur)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("cannot create directory %s: %s exists and is not a directory", j.imagePath(host), j.imagePath(cur))
			}
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("stat %s: %w", j.imagePath(cur), err)
		}
		if j.ignored(j.imagePath(cur)) {
			return fmt.Errorf("cannot create directory %s: it is on the ignore list", j.imagePath(cur))
		}
		if err := os.Mkdir(cur, 0o755); err != nil {
			return fmt.Errorf("create directory %s: %w", j.imagePath(cur), err)
		}
		if err := os.Lchown(cur, uid, gid); err != nil {
			return fmt.Errorf("chown %s: %w", j.imagePath(cur), err)
		}
		if !created {
			j.record(j.imagePath(cur))
			created = true
		}
	}
	return nil
}

// removeExisting clears the way for a new entry at host. A directory is
// removed only when nothing below it is on the ignore list.
func (j *job) removeExisting(host string) error {
	fi, err := os.Lstat(host)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat %s: %w", j.imagePath(host), err)
	}
	if !fi.IsDir() {
		if err := os.Remove(host); err != nil {
			return fmt.Errorf("replace %s: %w", j.imagePath(host), err)
		}
		return nil
	}
	if j.req.Ignore != nil {
		var hit string
		_ = filepath.WalkDir(host, func(p string, _ fs.DirEntry, err error) error {
			if err == nil && j.ignored(j.imagePath(p)) {
				hit = j.imagePath(p)
				return filepath.SkipAll
			}
			return nil
		})
		if hit != "" {
			return fmt.Errorf("cannot replace directory %s: it holds %s, which is on the ignore list", j.imagePath(host), hit)
		}
	}
	if err := os.RemoveAll(host); err != nil {
		return fmt.Errorf("replace directory %s: %w", j.imagePath(host), err)
	}
	return nil
}

func isNotDir(err error) bool { return errors.Is(err, syscall.ENOTDIR) }
