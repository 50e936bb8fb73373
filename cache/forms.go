package cache

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/internal/atomicfile"
	"github.com/kilnbuild/kiln/internal/decompress"
	"github.com/klauspost/compress/zstd"
)

// Unpack forms. A base layer's compressed blob is what a registry serves and what pushes and
// --tar-path reuse by digest, so the cache keeps it as it came. But gzip inflates on one core
// at about 250 MB/s, which after parallel unpacking is most of the time a rebuild spends on a
// base image. So the cache also keeps, per layer, its uncompressed tar (the content its
// diffID names) recompressed with zstd at its fastest level: unpacking the Debian base from
// it takes 0.45 s instead of 0.8 s (snapshot's BenchmarkUnpackAfterDeletion). A form is
// derived data: made while the blob is first unpacked, kept only when the tar's digest was
// its diffID, checked again by every reader, and the first thing --cache-dir-max-size drops.

// FormsDir is the subdirectory of the cache directory holding unpack forms, by diffID.
const FormsDir = "diffs"

func (c *BaseCache) formPath(diffID v1.Hash) string {
	return filepath.Join(c.dir, FormsDir, diffID.Algorithm, diffID.Hex+".zst")
}

// OpenForm opens the unpack form of the layer whose uncompressed tar has digest diffID: a
// zstd stream of that tar. The caller must check the tar's digest as it reads and call
// RemoveForm if it differs or the stream is damaged. A use counts as recent for pruning.
func (c *BaseCache) OpenForm(diffID v1.Hash) (io.ReadCloser, bool) {
	if diffID.Algorithm != "sha256" || diffID.Hex == "" {
		return nil, false
	}
	p := c.formPath(diffID)
	f, err := os.Open(p)
	if err != nil {
		return nil, false
	}
	now := time.Now()
	_ = os.Chtimes(p, now, now)
	return f, true
}

// RemoveForm removes the unpack form of diffID, found damaged (why), with a warning.
func (c *BaseCache) RemoveForm(diffID v1.Hash, why error) {
	p := c.formPath(diffID)
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.warn("cached unpack form %s is damaged (%v) and cannot be removed: %v", p, why, err)
		return
	}
	c.warn("cached unpack form %s is damaged (%v): removed; the image is unpacked again from its layers' blobs", p, why)
}

// NewForm returns a writer to feed the uncompressed tar of the layer with digest diffID
// into, or nil when its form is already kept, diffID is not sha256, or the cache cannot write
// (a warning says why, once per layer). Writing never fails the caller: a write error is kept
// and makes Commit drop the form.
func (c *BaseCache) NewForm(diffID v1.Hash) *FormWriter {
	if diffID.Algorithm != "sha256" || diffID.Hex == "" || c.hasFailed(diffID) {
		return nil
	}
	final := c.formPath(diffID)
	if _, err := os.Stat(final); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		c.storeFailed(diffID, err)
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(final), diffID.Hex+".*.part")
	if err != nil {
		c.storeFailed(diffID, err)
		return nil
	}
	zw, err := zstd.NewWriter(tmp, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(true))
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		c.storeFailed(diffID, err)
		return nil
	}
	return &FormWriter{c: c, diffID: diffID, tmp: tmp, zw: zw, final: final}
}

// FormWriter makes one unpack form (see NewForm).
type FormWriter struct {
	c      *BaseCache
	diffID v1.Hash
	tmp    *os.File
	zw     *zstd.Encoder
	final  string
	err    error // the first write error
}

// Write compresses p into the form; it always reports success (see NewForm).
func (w *FormWriter) Write(p []byte) (int, error) {
	if w.err == nil {
		_, w.err = w.zw.Write(p)
	}
	return len(p), nil
}

// Commit keeps the form when got, the digest of everything written, is its diffID, and
// drops it otherwise. It is written under a temporary name and renamed into place, so a
// reader never sees a torn form.
func (w *FormWriter) Commit(got v1.Hash) {
	err := w.zw.Close()
	if cerr := w.tmp.Close(); err == nil {
		err = cerr
	}
	if w.err == nil {
		w.err = err
	}
	if w.err == nil && got != w.diffID {
		w.err = errors.New("its content is " + got.String())
	}
	if w.err == nil {
		w.err = os.Rename(w.tmp.Name(), w.final)
	}
	if w.err != nil {
		os.Remove(w.tmp.Name())
		w.c.storeFailed(w.diffID, w.err)
	}
}

// Abort drops the form (the layer was not read to its end, or was refused).
func (w *FormWriter) Abort() {
	w.zw.Close()
	w.tmp.Close()
	os.Remove(w.tmp.Name())
}

// OpenForm, RemoveForm and NewForm on a layer of an image from Image: its diffID's form. A
// layer of Refresh (the warmer's --force) has none, and makes none.
func (l *cachedLayer) OpenForm() (io.ReadCloser, bool) {
	d, err := l.Layer.DiffID()
	if err != nil || l.refresh {
		return nil, false
	}
	return l.c.OpenForm(d)
}

func (l *cachedLayer) RemoveForm(why error) {
	if d, err := l.Layer.DiffID(); err == nil {
		l.c.RemoveForm(d, why)
	}
}

func (l *cachedLayer) NewForm() *FormWriter {
	d, err := l.Layer.DiffID()
	if err != nil || l.refresh {
		return nil
	}
	return l.c.NewForm(d)
}

// MakeForm makes the unpack form of the cached layer blob d, whose uncompressed tar has
// digest diffID, unless it is kept already (the warmer's way to spare a build's first unpack
// the gzip). It reports whether it made one; the form is kept only if the blob's tar is
// diffID.
func (c *BaseCache) MakeForm(d, diffID v1.Hash) (bool, error) {
	w := c.NewForm(diffID)
	if w == nil {
		return false, nil
	}
	if !c.usable(d) {
		w.Abort()
		return false, fmt.Errorf("layer %s is not in the base image cache %s", d, c.dir)
	}
	f, err := os.Open(c.path(d))
	if err != nil {
		w.Abort()
		return false, err
	}
	defer f.Close()
	r, done, err := decompress.Reader(f)
	if err != nil {
		w.Abort()
		return false, fmt.Errorf("layer %s: %w", d, err)
	}
	defer done()
	_, sum, err := atomicfile.CopySHA256(w, r)
	if err != nil {
		w.Abort()
		return false, fmt.Errorf("layer %s: %w", d, err)
	}
	got := v1.Hash{Algorithm: "sha256", Hex: sum}
	if got != diffID {
		w.Abort()
		return false, fmt.Errorf("layer %s holds a tar with digest %s, but its image's config records %s", d, got, diffID)
	}
	w.Commit(got)
	_, err = os.Stat(c.formPath(diffID))
	return err == nil, nil
}
