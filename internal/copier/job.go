package copier

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// job is the state of one Copy or Add call; nothing is shared between calls.
type job struct {
	ctx  context.Context
	req  Request
	verb string // "COPY" or "ADD", for messages
	root string // absolute, cleaned Root
	// links maps a source inode to the first destination written for it, so
	// hard links among copied files stay hard links.
	links   map[fileID]string
	written []string
	// parents is the COPY --parents source being copied (nil otherwise), and selected
	// counts the entries such sources selected.
	parents  *ParentsSource
	selected int
}

// fileID identifies an inode on the source side.
type fileID struct{ dev, ino uint64 }

func newJob(ctx context.Context, r Request, verb string) (*job, error) {
	if r.Root == "" {
		return nil, fmt.Errorf("%s: no image root given", verb)
	}
	root, err := filepath.Abs(r.Root)
	if err != nil {
		return nil, fmt.Errorf("%s: image root %s: %w", verb, r.Root, err)
	}
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("%s: image root: %w", verb, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s: image root %s is not a directory", verb, root)
	}
	return &job{ctx: ctx, req: r, verb: verb, root: root, links: map[fileID]string{}}, nil
}

// imagePath turns a host path under the root into an absolute image path.
func (j *job) imagePath(host string) string {
	rel, err := filepath.Rel(j.root, host)
	if err != nil || rel == "." {
		return "/"
	}
	return "/" + filepath.ToSlash(rel)
}

// ignored reports whether an image path is on the ignore list.
func (j *job) ignored(img string) bool {
	return j.req.Ignore != nil && j.req.Ignore(img)
}

// excluded reports whether a source path is excluded by .dockerignore.
func (j *job) excluded(rel string) bool {
	return j.req.Exclude != nil && rel != "." && j.req.Exclude(rel)
}

// record notes an image path as written.
func (j *job) record(img string) { j.written = append(j.written, img) }

// owner returns the uid and gid to give an entry copied from a source with
// the given stat.
func (j *job) owner(fi fs.FileInfo) (int, int) {
	uid, gid := j.req.UID, j.req.GID
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if uid < 0 {
			uid = int(st.Uid)
		}
		if gid < 0 {
			gid = int(st.Gid)
		}
	}
	return max(uid, 0), max(gid, 0)
}

// parentOwner is the owner of directories created as parents of the dest.
func (j *job) parentOwner() (int, int) {
	return max(j.req.UID, 0), max(j.req.GID, 0)
}

// permBits keeps what chmod can set: permissions plus setuid/setgid/sticky.
const permBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// mode returns the mode to give a file or directory copied from a source
// with the given mode: --chmod when set, the source's otherwise.
func (j *job) mode(src fs.FileMode) fs.FileMode {
	if j.req.Mode != nil {
		return *j.req.Mode & permBits
	}
	return src & permBits
}

func (j *job) checkCtx() error {
	if err := j.ctx.Err(); err != nil {
		return fmt.Errorf("%s cancelled: %w", j.verb, err)
	}
	return nil
}
