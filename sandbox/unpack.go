package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/internal/decompress"
	"github.com/kilnbuild/kiln/internal/units"
	"github.com/kilnbuild/kiln/snapshot"
)

// Logger receives progress lines. The executor's logger satisfies it; LoggerFunc adapts a
// Printf-style function such as log.Printf.
type Logger interface {
	Infof(format string, args ...any)
}

// LoggerFunc is a Logger made of a Printf-style function.
type LoggerFunc func(format string, args ...any)

// Infof calls f.
func (f LoggerFunc) Infof(format string, args ...any) { f(format, args...) }

// Option configures Unpack.
type Option func(*options)

type options struct {
	log Logger
}

// WithLogger reports Unpack's progress to l: one line per layer (digest, compressed and
// unpacked size, time) and a total.
func WithLogger(l Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// Unpack writes img's filesystem into dir, one layer after the other (whiteouts and opaque
// directories applied, owners, modes, xattrs and times kept, nothing written outside dir), and
// returns it as a Root carrying the image's config. dir is created if missing and must be
// empty: Unpack never mixes an image into other files. Layers are streamed from the image
// (from the registry for a pulled image); ctx cancels the work between entries. After an
// error dir may hold part of the image: remove it (Root.Remove, os.RemoveAll).
func Unpack(ctx context.Context, img v1.Image, dir string, opts ...Option) (*Root, error) {
	o := options{log: LoggerFunc(func(string, ...any) {})}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("sandbox: read the image config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("sandbox: list the image layers: %w", err)
	}
	dir, err = emptyDir(dir)
	if err != nil {
		return nil, err
	}
	var compressed, unpacked int64
	for _, l := range layers {
		if n, err := l.Size(); err == nil {
			compressed += n
		}
	}
	o.log.Infof("unpacking %s (%s) into %s", layerCount(len(layers)), units.Bytes(compressed), dir)
	start := time.Now()
	for i, l := range layers {
		n, err := unpackLayer(ctx, l, dir, fmt.Sprintf("%d/%d", i+1, len(layers)), o.log)
		if err != nil {
			return nil, err
		}
		unpacked += n
	}
	o.log.Infof("unpacked %s, %s, in %s", layerCount(len(layers)), units.Bytes(unpacked), since(start))
	return &Root{Dir: dir, Config: *cf.Config.DeepCopy()}, nil
}

// emptyDir creates dir if needed and returns its absolute, symlink-free path, refusing a
// directory that holds anything (the host's / above all).
func emptyDir(dir string) (string, error) {
	if dir == "" {
		return "", errors.New("sandbox: no directory to unpack into")
	}
	abs, err := filepath.Abs(dir)
	if err == nil {
		err = os.MkdirAll(abs, 0o755)
	}
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return "", fmt.Errorf("sandbox: unpack into %s: %w", dir, err)
	}
	if abs == "/" {
		return "", fmt.Errorf("sandbox: refusing to unpack an image into the host's / (%s)", dir)
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return "", fmt.Errorf("sandbox: unpack into %s: %w", dir, err)
	}
	if len(entries) > 0 {
		return "", fmt.Errorf("sandbox: unpack into %s: the directory is not empty (it holds %s)", dir, entries[0].Name())
	}
	return abs, nil
}

// unpackLayer streams one layer into dir and returns its uncompressed size.
func unpackLayer(ctx context.Context, l v1.Layer, dir, which string, log Logger) (int64, error) {
	start := time.Now()
	d, err := l.Digest()
	if err != nil {
		return 0, fmt.Errorf("sandbox: layer %s: %w", which, err)
	}
	fail := func(err error) (int64, error) {
		return 0, fmt.Errorf("sandbox: layer %s (%s): %w", which, d, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return fail(err)
	}
	defer rc.Close()
	tarStream, release, err := decompress.Reader(rc)
	if err != nil {
		return fail(err)
	}
	defer release()
	counted := &countingReader{r: tarStream}
	stop := reportProgress(counted, which, log)
	err = snapshot.Extract(ctx, dir, counted)
	stop()
	if err != nil {
		return fail(err)
	}
	// Read to the end, so the digest of the blob is verified.
	if _, err := io.Copy(io.Discard, counted); err != nil {
		return fail(err)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return fail(err)
	}
	size, _ := l.Size()
	n := counted.n.Load()
	log.Infof("layer %s %s: %s compressed, %s unpacked in %s", which, shortDigest(d), units.Bytes(size), units.Bytes(n), since(start))
	return n, nil
}

// progressEvery is how often a long layer reports how far it got.
const progressEvery = 10 * time.Second

// reportProgress logs how much of a layer was unpacked every progressEvery until stop is
// called; stop returns once the reporter is gone, so log is never called concurrently.
func reportProgress(c *countingReader, which string, log Logger) (stop func()) {
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		tick := time.NewTicker(progressEvery)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				log.Infof("layer %s: %s unpacked so far", which, units.Bytes(c.n.Load()))
			}
		}
	}()
	return func() { close(done); <-exited }
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func layerCount(n int) string {
	if n == 1 {
		return "1 layer"
	}
	return fmt.Sprintf("%d layers", n)
}

func shortDigest(h v1.Hash) string {
	if len(h.Hex) > 12 {
		return h.Algorithm + ":" + h.Hex[:12]
	}
	return h.String()
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }
