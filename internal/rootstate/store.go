package rootstate

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/internal/dirspread"
	"golang.org/x/sys/unix"
)

// format names the on-disk form; a change to how layers are written gets a new one.
const format = "v1"

// marker is written last into a layer directory: "<diffID> <bytes on disk>".
const marker = "complete"

// Store is a directory of unpacked layers, shared by builds (and processes) using the same one.
type Store struct {
	dir  string   // <dir>/v1
	lock *os.File // shared flock, held until Close
}

// Open opens (creating it if needed) the store in dir and takes a shared lock on it, so that
// Prune in another build leaves it alone until Close.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: filepath.Join(abs, format)}
	for _, d := range []string{"layers", "tmp", "mounts", "rejected"} {
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("root state cache %s: %w", dir, err)
		}
	}
	dirspread.Children(filepath.Join(s.dir, "tmp")) // each layer is unpacked under tmp first
	f, err := lockFile(filepath.Join(s.dir, "lock"), unix.LOCK_SH)
	if err != nil {
		return nil, fmt.Errorf("root state cache %s: %w", dir, err)
	}
	s.lock = f
	return s, nil
}

func lockFile(path string, how int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Close releases the store's lock.
func (s *Store) Close() error { return s.lock.Close() }

// String is the store's directory.
func (s *Store) String() string { return filepath.Dir(s.dir) }

func (s *Store) layerDir(diffID v1.Hash) string {
	return filepath.Join(s.dir, "layers", diffID.Hex)
}

// Dir is the unpacked form of the layer (valid only when Has reports it).
func (s *Store) Dir(diffID v1.Hash) string { return filepath.Join(s.layerDir(diffID), "diff") }

// Has reports whether the layer is kept complete. A directory without its marker, or whose
// marker names another layer, is damaged or partial and is never used.
func (s *Store) Has(diffID v1.Hash) bool {
	b, err := os.ReadFile(filepath.Join(s.layerDir(diffID), marker))
	if err != nil {
		return false
	}
	id, _, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	fi, err := os.Lstat(s.Dir(diffID))
	return id == diffID.String() && err == nil && fi.IsDir()
}

// Rejected returns why an earlier Add refused the layer (ErrNotSelfContained), or nil.
func (s *Store) Rejected(diffID v1.Hash) error {
	b, err := os.ReadFile(filepath.Join(s.dir, "rejected", diffID.Hex))
	if err != nil {
		return nil
	}
	return fmt.Errorf("%w (found earlier: %s)", ErrNotSelfContained, strings.TrimSpace(string(b)))
}

// Add unpacks the uncompressed layer tar r as diffID, checking that r is that layer. It is
// written under a temporary name and renamed into place, marker included, so a crash leaves
// nothing Has accepts; when another build added the layer first, Add keeps that one.
func (s *Store) Add(diffID v1.Hash, r io.Reader) error {
	tmp, err := os.MkdirTemp(filepath.Join(s.dir, "tmp"), diffID.Hex[:12]+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	diff := filepath.Join(tmp, "diff")
	if err := os.Mkdir(diff, 0o755); err != nil {
		return err
	}
	h := sha256.New()
	if err := unpackDiff(diff, io.TeeReader(r, h)); err != nil {
		if errors.Is(err, ErrNotSelfContained) { // remembered, so later builds do not try again
			_ = os.WriteFile(filepath.Join(s.dir, "rejected", diffID.Hex), []byte(err.Error()+"\n"), 0o600)
		}
		return err
	}
	if _, err := io.Copy(h, r); err != nil { // the tar's padding after its end
		return err
	}
	if got := "sha256:" + fmt.Sprintf("%x", h.Sum(nil)); got != diffID.String() {
		return fmt.Errorf("layer content is %s, not the diffID %s", got, diffID)
	}
	size, err := diskUsage(diff)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, marker), []byte(diffID.String()+" "+strconv.FormatInt(size, 10)+"\n"), 0o600); err != nil {
		return err
	}
	dst := s.layerDir(diffID)
	if s.Has(diffID) {
		return nil
	}
	os.RemoveAll(dst) // a damaged one
	if err := os.Rename(tmp, dst); err != nil && !s.Has(diffID) {
		return err
	}
	return nil
}

// Touch marks the layers as used now (pruning removes the least recently used first).
func (s *Store) Touch(diffIDs ...v1.Hash) {
	now := time.Now()
	for _, d := range diffIDs {
		_ = os.Chtimes(filepath.Join(s.layerDir(d), marker), now, now)
	}
}

func diskUsage(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		}
		return nil
	})
	return n, err
}

// PruneResult says what Prune did.
type PruneResult struct {
	Kept, Removed int
	Size, Freed   int64 // bytes kept, and freed
	Busy          bool  // another build held the store: nothing was pruned
}

// Prune removes the least recently used layers of the store in dir until the rest take at most
// maxSize bytes (0: no bound), with leftovers of interrupted builds. It only runs when no
// build has the store open (Busy otherwise), and never removes a layer a mount still uses.
func Prune(dir string, maxSize int64) (PruneResult, error) {
	var res PruneResult
	base := filepath.Join(dir, format)
	f, err := lockFile(filepath.Join(base, "lock"), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return PruneResult{Busy: true}, nil
	}
	if err != nil {
		return res, err
	}
	defer f.Close()
	mounted, _ := os.ReadFile("/proc/self/mountinfo")
	inUse := func(p string) bool { return strings.Contains(string(mounted), p) }
	for _, d := range []string{"tmp", "mounts"} { // no build has the store open: all stale
		entries, _ := os.ReadDir(filepath.Join(base, d))
		for _, e := range entries {
			if p := filepath.Join(base, d, e.Name()); !inUse(p) {
				os.RemoveAll(p)
			}
		}
	}
	type layer struct {
		path string
		size int64
		used time.Time
	}
	var layers []layer
	entries, err := os.ReadDir(filepath.Join(base, "layers"))
	if err != nil {
		return res, err
	}
	for _, e := range entries {
		p := filepath.Join(base, "layers", e.Name())
		fi, err1 := os.Stat(filepath.Join(p, marker))
		b, err2 := os.ReadFile(filepath.Join(p, marker))
		_, sz, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
		size, err3 := strconv.ParseInt(sz, 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			if !inUse(p) { // damaged or partial
				os.RemoveAll(p)
			}
			continue
		}
		layers = append(layers, layer{p, size, fi.ModTime()})
	}
	sort.Slice(layers, func(i, j int) bool { return layers[i].used.After(layers[j].used) })
	for _, l := range layers {
		if maxSize <= 0 || res.Size+l.size <= maxSize || inUse(l.path) {
			res.Kept++
			res.Size += l.size
			continue
		}
		if err := os.RemoveAll(l.path); err != nil {
			return res, err
		}
		res.Removed++
		res.Freed += l.size
	}
	return res, nil
}
