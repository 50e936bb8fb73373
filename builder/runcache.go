package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"golang.org/x/sys/unix"
)

// cacheDirs holds the directories of RUN --mount=type=cache, one per cache id, under root (see
// WithRunCacheDir). Next to each directory is its lock file: builds that share root (two
// processes on one persistent volume too) coordinate through flock on it, which the kernel
// drops when a build dies, so a crashed build never leaves a cache locked.
//
//	root/<name>/         the cache directory a RUN sees at its target
//	root/<name>.lock     its lock: shared for sharing=shared, exclusive for locked and private
//	root/<name>.p<N>/    further instances that sharing=private creates while <name> is busy
type cacheDirs struct {
	root string
}

// cacheLease is one RUN's hold on a cache directory; release ends it.
type cacheLease struct {
	dir  string
	lock *os.File
}

func (l *cacheLease) release() { l.lock.Close() } // closing the last descriptor drops the flock

// cacheSpec is what acquire needs to know about a cache mount.
type cacheSpec struct {
	id       string
	sharing  instructions.ShareMode
	mode     os.FileMode
	uid, gid uint32
	// seed fills a new cache directory (from= and source=); nil leaves it empty.
	seed func(dir string) error
}

// lockPoll is how often a build waiting for a cache lock tries again (flock cannot be
// interrupted by a context, so the wait polls).
const lockPoll = 50 * time.Millisecond

// acquire returns the directory for a cache mount, created (and seeded) on first use, held
// according to the mount's sharing until release: shared with other shared users, alone for
// locked (waiting for the holder, and calling waiting once when it must), or for private a
// directory no one else holds, creating another instance when all are busy.
func (c cacheDirs) acquire(ctx context.Context, cs cacheSpec, waiting func()) (*cacheLease, error) {
	if err := os.MkdirAll(c.root, 0o755); err != nil {
		return nil, fmt.Errorf("cache mount directory: %w", err)
	}
	name := cacheName(cs.id)
	var lease *cacheLease
	var err error
	switch cs.sharing {
	case instructions.MountSharingPrivate:
		lease, err = c.firstFree(name)
	case instructions.MountSharingLocked:
		lease, err = c.wait(ctx, name, unix.LOCK_EX, waiting)
	default:
		lease, err = c.wait(ctx, name, unix.LOCK_SH, waiting)
	}
	if err != nil {
		return nil, fmt.Errorf("cache mount id=%s: %w", cs.id, err)
	}
	if err := c.create(lease.dir, cs); err != nil {
		lease.release()
		return nil, fmt.Errorf("cache mount id=%s: %w", cs.id, err)
	}
	return lease, nil
}

// wait takes the lock of instance name (how: LOCK_SH or LOCK_EX), waiting as long as ctx lets it.
func (c cacheDirs) wait(ctx context.Context, name string, how int, waiting func()) (*cacheLease, error) {
	told := false
	for {
		lease, err := c.try(name, how)
		if err == nil || !errors.Is(err, unix.EWOULDBLOCK) {
			return lease, err
		}
		if !told && waiting != nil {
			waiting()
			told = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(lockPoll):
		}
	}
}

// firstFree takes the first instance of name that no one holds, the next new one if all are.
func (c cacheDirs) firstFree(name string) (*cacheLease, error) {
	for n := 0; ; n++ {
		inst := name
		if n > 0 {
			inst = name + ".p" + strconv.Itoa(n)
		}
		lease, err := c.try(inst, unix.LOCK_EX)
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return lease, err
		}
	}
}

// try takes the lock of instance inst without waiting; EWOULDBLOCK means someone holds it.
func (c cacheDirs) try(inst string, how int) (*cacheLease, error) {
	f, err := os.OpenFile(filepath.Join(c.root, inst+".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return &cacheLease{dir: filepath.Join(c.root, inst), lock: f}, nil
}

// create makes a missing cache directory with the mount's mode and owner and its seed. It is
// built under a temporary name and renamed into place without replacing anything, so a shared
// user that created it at the same moment wins and no one sees a half-seeded cache.
func (c cacheDirs) create(dir string, cs cacheSpec) error {
	if _, err := os.Lstat(dir); err == nil || !errors.Is(err, os.ErrNotExist) {
		return err
	}
	tmp, err := os.MkdirTemp(c.root, ".new-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if cs.seed != nil {
		if err := cs.seed(tmp); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, cs.mode); err != nil {
		return err
	}
	if err := os.Lchown(tmp, int(cs.uid), int(cs.gid)); err != nil {
		return err
	}
	err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dir, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}

// CacheMountDir is the directory holding the cache mount id (the target, unless the mount
// names an id=) below dir, a WithRunCacheDir directory (the executor's is <--cache-dir>/mounts):
// a CI system may fill it before a build, as it restores a cache volume, and builds will find
// it there. A missing directory is created on first use.
func CacheMountDir(dir, id string) string { return filepath.Join(dir, cacheName(id)) }

// cacheName is the file name of cache id: readable (its letters and digits), and unique
// (a digest of the whole id), since ids are free text such as "/root/.cache".
func cacheName(id string) string {
	readable := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, strings.Trim(id, "/"))
	if len(readable) > 40 {
		readable = readable[:40]
	}
	sum := sha256.Sum256([]byte(id))
	return readable + "-" + hex.EncodeToString(sum[:6])
}
