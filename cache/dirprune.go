package cache

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// PruneOptions bounds a DirStore.
type PruneOptions struct {
	// MaxSize is the most bytes the store (and the AlsoCount directories) may hold after Prune;
	// 0: no bound.
	MaxSize int64
	// TTL removes entries created longer ago than this (0: none), as Lookup would miss them.
	TTL time.Duration
	// AlsoCount are directories on the same volume that count towards MaxSize but are not
	// pruned here (the base-image cache: its blobs are read in place by running builds).
	AlsoCount []string
	// Derived are directories of files made from others, such as the base image cache's unpack
	// forms (FormsDir): they count towards MaxSize and are removed first, least recently used
	// first (by mtime, which a use touches), before any layer cache entry.
	Derived []string
	// Now is the time ages are measured from (time.Now() when zero).
	Now time.Time
}

// PruneResult says what Prune found and removed.
type PruneResult struct {
	Size          int64 // bytes left: the store's files and the AlsoCount directories
	Other         int64 // of Size, the AlsoCount directories
	Entries       int   // entries left
	Removed       int   // entries removed
	RemovedBlobs  int   // blobs removed
	RemovedForms  int   // files of the Derived directories removed
	Freed         int64 // bytes removed
	Expired       int   // of Removed, entries past the TTL
	OverBoundLeft bool  // MaxSize could not be met by removing layer cache entries alone
}

// orphanGrace keeps a blob no entry names for a while: it may belong to an entry another
// process is writing right now.
const orphanGrace = time.Minute

// tempGrace is how old a temporary file must be to be taken as left by a killed writer.
const tempGrace = time.Hour

type pruneEntry struct {
	path    string
	size    int64
	used    time.Time
	created time.Time
	blob    v1.Hash // zero for an empty entry
	lineage string
}

// Prune removes expired entries, then the least recently used ones (by their entry file's
// mtime, which a hit touches) until the store and opts.AlsoCount fit in opts.MaxSize, then the
// blobs no entry names any more and temporary files left by killed writers. It never blocks a
// reader: each removal is one unlink, and a reader whose entry's blob was just removed misses.
func (s *DirStore) Prune(ctx context.Context, opts PruneOptions) (PruneResult, error) {
	p := &pruner{s: s, now: opts.Now, refs: map[v1.Hash]int{}}
	if p.now.IsZero() {
		p.now = time.Now()
	}
	entries, err := s.listEntries()
	if err != nil {
		return p.res, err
	}
	mtimes, sizes, err := s.listBlobs(p.now, &p.res)
	if err != nil {
		return p.res, err
	}
	p.blobSizes = sizes
	live := p.expire(entries, opts.TTL)
	if err := p.countOthers(opts.AlsoCount); err != nil {
		return p.res, err
	}
	derived := p.countDerived(opts.Derived)
	p.removeOrphans(mtimes)
	p.dropDerived(derived, opts.MaxSize)
	kept := p.evict(ctx, live, opts.MaxSize)
	p.res.Entries, p.res.Size = len(kept), p.total
	p.res.OverBoundLeft = opts.MaxSize > 0 && p.total > opts.MaxSize
	return p.res, ctx.Err()
}

// pruner is one Prune's running count of what the store holds and what it removed.
type pruner struct {
	s         *DirStore
	now       time.Time
	total     int64             // bytes the store and the AlsoCount directories hold
	refs      map[v1.Hash]int   // entries naming each blob
	blobSizes map[v1.Hash]int64 // every blob's size
	res       PruneResult
}

// expire removes the entries older than ttl and returns the others, counting their sizes
// and the blobs they name.
func (p *pruner) expire(entries []pruneEntry, ttl time.Duration) []pruneEntry {
	var live []pruneEntry
	for _, e := range entries {
		if ttl > 0 && p.now.Sub(e.created) > ttl {
			if os.Remove(e.path) == nil {
				p.res.Removed++
				p.res.Expired++
				p.res.Freed += e.size
			}
			continue
		}
		live = append(live, e)
		p.total += e.size
		if e.blob.Hex != "" {
			p.refs[e.blob]++
		}
	}
	return live
}

// countOthers adds the lineage records, the blobs and the AlsoCount directories to the total.
func (p *pruner) countOthers(also []string) error {
	lineageSizes, err := p.s.lineageSizes()
	if err != nil {
		return err
	}
	for _, n := range lineageSizes {
		p.total += n
	}
	for _, n := range p.blobSizes {
		p.total += n
	}
	for _, d := range also {
		p.res.Other += dirSize(d)
	}
	p.total += p.res.Other
	return nil
}

// derivedFile is one file of a Derived directory.
type derivedFile struct {
	path string
	size int64
	used time.Time
}

// countDerived lists the Derived directories' files, adding their sizes to the total, and
// removes temporary files (*.part) a killed writer left.
func (p *pruner) countDerived(dirs []string) []derivedFile {
	var files []derivedFile
	for _, dir := range dirs {
		_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return nil
			}
			if strings.HasSuffix(path, ".part") && p.now.Sub(fi.ModTime()) > tempGrace {
				os.Remove(path)
				return nil
			}
			p.total += fi.Size()
			files = append(files, derivedFile{path: path, size: fi.Size(), used: fi.ModTime()})
			return nil
		})
	}
	return files
}

// dropDerived removes derived files, least recently used first, until the total fits in
// maxSize (0: no bound).
func (p *pruner) dropDerived(files []derivedFile, maxSize int64) {
	sort.Slice(files, func(i, j int) bool { return files[i].used.Before(files[j].used) })
	for _, f := range files {
		if maxSize <= 0 || p.total <= maxSize {
			return
		}
		if strings.HasSuffix(f.path, ".part") || os.Remove(f.path) != nil {
			continue
		}
		p.total -= f.size
		p.res.Freed += f.size
		p.res.RemovedForms++
	}
}

// removeOrphans removes the blobs no entry names, unless just written (their entry may be
// on its way).
func (p *pruner) removeOrphans(mtimes map[v1.Hash]time.Time) {
	for d, mtime := range mtimes {
		if p.refs[d] == 0 && p.now.Sub(mtime) > orphanGrace && os.Remove(p.s.blobPath(d)) == nil {
			p.freeBlob(d)
		}
	}
}

func (p *pruner) freeBlob(d v1.Hash) {
	p.total -= p.blobSizes[d]
	p.res.Freed += p.blobSizes[d]
	p.res.RemovedBlobs++
	delete(p.blobSizes, d)
}

// evict removes the least recently used entries until the total fits in maxSize (0: no
// bound), with their lineage records and the blobs no other entry names; it returns the
// entries kept.
func (p *pruner) evict(ctx context.Context, live []pruneEntry, maxSize int64) []pruneEntry {
	sort.Slice(live, func(i, j int) bool { return live[i].used.Before(live[j].used) })
	start := time.Now()
	kept := live[:0]
	for i, e := range live {
		if maxSize <= 0 || p.total <= maxSize || ctx.Err() != nil {
			return append(kept, live[i:]...)
		}
		if os.Remove(e.path) != nil {
			kept = append(kept, e)
			continue
		}
		p.total -= e.size
		p.res.Freed += e.size
		p.res.Removed++
		if e.lineage != "" {
			n := p.s.removeLineageOf(e.lineage, e.path)
			p.total -= n
			p.res.Freed += n
		}
		p.releaseBlob(e.blob, start)
	}
	return kept
}

// releaseBlob drops one entry's use of blob d and removes it when no entry is left using it,
// unless a writer touched it since start (its new entry needs it).
func (p *pruner) releaseBlob(d v1.Hash, start time.Time) {
	if d.Hex == "" {
		return
	}
	if p.refs[d]--; p.refs[d] > 0 {
		return
	}
	path := p.s.blobPath(d)
	if fi, err := os.Stat(path); err == nil && !fi.ModTime().Before(start) {
		return
	}
	if os.Remove(path) == nil {
		p.freeBlob(d)
	}
}

// listEntries reads every entry file's use time, creation time and blob. Files that cannot
// be read as entries are removed: they can never hit.
func (s *DirStore) listEntries() ([]pruneEntry, error) {
	dir := filepath.Join(s.dir, "entries")
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []pruneEntry
	for _, de := range des {
		if isTemp(de.Name()) || !strings.HasSuffix(de.Name(), ".json") {
			continue
		}
		p := filepath.Join(dir, de.Name())
		fi, err := os.Stat(p)
		if err != nil {
			continue // removed by another process meanwhile
		}
		r, err := s.readRecord(p, de.Name())
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				os.Remove(p)
			}
			continue
		}
		e := pruneEntry{path: p, size: fi.Size(), used: fi.ModTime(), created: r.Created, lineage: r.Lineage}
		if r.Layer != nil {
			e.blob = r.Layer.Digest
		}
		out = append(out, e)
	}
	return out, nil
}

// listBlobs returns each blob's mtime and size, removing temporary files older than tempGrace.
func (s *DirStore) listBlobs(now time.Time, res *PruneResult) (map[v1.Hash]time.Time, map[v1.Hash]int64, error) {
	mtimes, sizes := map[v1.Hash]time.Time{}, map[v1.Hash]int64{}
	dir := filepath.Join(s.dir, "blobs", "sha256")
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return mtimes, sizes, nil
	}
	if err != nil {
		return nil, nil, err
	}
	for _, de := range des {
		fi, err := de.Info()
		if err != nil {
			continue
		}
		if isTemp(de.Name()) {
			if now.Sub(fi.ModTime()) > tempGrace && os.Remove(filepath.Join(dir, de.Name())) == nil {
				res.Freed += fi.Size()
			}
			continue
		}
		d := v1.Hash{Algorithm: "sha256", Hex: de.Name()}
		mtimes[d], sizes[d] = fi.ModTime(), fi.Size()
	}
	return mtimes, sizes, nil
}

func (s *DirStore) lineageSizes() (map[string]int64, error) {
	out := map[string]int64{}
	dir := filepath.Join(s.dir, "lineages")
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for _, de := range des {
		if fi, err := de.Info(); err == nil && !isTemp(de.Name()) {
			out[de.Name()] = fi.Size()
		}
	}
	return out, nil
}

// removeLineageOf removes a lineage's pointer when it names the removed entry, returning the
// bytes freed.
func (s *DirStore) removeLineageOf(lineage, entryPath string) int64 {
	p := s.lineagePath(lineage)
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	var r dirRecord
	if json.Unmarshal(b, &r) != nil || s.entryPath(r.Key) != entryPath {
		return 0
	}
	if os.Remove(p) != nil {
		return 0
	}
	return int64(len(b))
}

// dirSize sums the sizes of the regular files below dir (0 when it does not exist).
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
