package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/kilnbuild/kiln/cache"
	"github.com/kilnbuild/kiln/registry"
)

// fetchJobs bounds concurrent layer downloads.
const fetchJobs = 3

// fetchedLayer is a layer's compressed blob, downloaded ahead of its extraction.
type fetchedLayer struct {
	layer  v1.Layer
	path   string // local file holding the compressed blob ("" = read the layer directly)
	pulled bool   // the blob came over the network in this build
	size   int64
	took   time.Duration
	err    error
	done   chan struct{}
	// form is the layer's unpack form, when the base image cache keeps it (formLayer): read
	// instead of the blob, which is then neither fetched nor checked.
	form io.ReadCloser
}

// formLayer is a base layer whose cache may keep its unpack form: its tar as zstd, which
// unpacks faster than the registry's gzip blob (see cache.BaseCache.OpenForm).
type formLayer interface {
	OpenForm() (io.ReadCloser, bool)
	RemoveForm(why error)
	NewForm() *cache.FormWriter
}

// localLayer is a layer whose blob may already be a file here (a layer this build wrote, or a
// base layer in the local cache); Path is "" when it is not.
type localLayer interface{ Path() string }

// prefetch starts downloading every remote layer's compressed blob into dir, a few at a time,
// so that pulls run concurrently and overlap the extraction of earlier layers. The caller
// extracts the layers in order, waiting on each one's done channel. With forms, a layer whose
// unpack form is kept is read from it.
func prefetch(ctx context.Context, layers []v1.Layer, dir string, forms bool) []*fetchedLayer {
	out := make([]*fetchedLayer, len(layers))
	sem := make(chan struct{}, fetchJobs)
	var wg sync.WaitGroup
	for i, l := range layers {
		f := &fetchedLayer{layer: l, done: make(chan struct{})}
		out[i] = f
		if fl, ok := l.(formLayer); ok && forms {
			if f.form, ok = fl.OpenForm(); ok {
				close(f.done)
				continue
			}
		}
		if ll, ok := l.(localLayer); ok && ll.Path() != "" {
			close(f.done)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(f.done)
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				f.err = ctx.Err()
				return
			}
			defer func() { <-sem }()
			start := time.Now()
			defer func() { f.took, f.pulled = time.Since(start), f.err == nil }()
			if ll, ok := l.(localLayer); ok {
				// Backed by the local cache, which stores the blob as it is read: read it once
				// to fill the cache, then extract from the cache file, not from a second copy.
				if f.size, f.err = drain(l); f.err == nil && ll.Path() != "" {
					return
				}
			}
			f.path, f.size, f.err = download(l, dir)
		}()
	}
	return out
}

// download copies a layer's compressed blob to a file in dir.
func download(l v1.Layer, dir string) (string, int64, error) {
	rc, err := l.Compressed()
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	f, err := os.CreateTemp(dir, "layer-*.blob")
	if err != nil {
		return "", 0, err
	}
	n, err := io.Copy(f, rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", 0, err
	}
	return f.Name(), n, nil
}

// drain reads a layer's compressed blob to the end.
func drain(l v1.Layer) (int64, error) {
	rc, err := l.Compressed()
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// open returns the blob to extract, waiting for its download.
func (f *fetchedLayer) open(ctx context.Context) (io.ReadCloser, error) {
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if f.err != nil {
		d, _ := f.layer.Digest()
		return nil, fmt.Errorf("pulling layer %s: %w", d, f.err)
	}
	if f.path == "" {
		return f.layer.Compressed()
	}
	return os.Open(f.path)
}

// diffID is the digest the image's config records for the layer's uncompressed content (zero
// when the layer cannot say).
func (f *fetchedLayer) diffID() v1.Hash {
	d, err := f.layer.DiffID()
	if err != nil {
		return v1.Hash{}
	}
	return d
}

// cleanup removes downloaded blobs once they are no longer needed.
func cleanupFetched(fs []*fetchedLayer) {
	for _, f := range fs {
		<-f.done
		if f.form != nil {
			f.form.Close()
		}
		if f.path != "" {
			os.Remove(f.path)
		}
	}
}

func fetchDir(workDir string) string { return filepath.Join(workDir, "tmp") }

// pullBase resolves a stage's base image, through the base image cache when the build has one
// (--cache-dir): a digest reference the cache holds needs no registry; a tag is resolved by
// the registry and the answer recorded (with the manifest and config); and when the registry
// cannot be reached (a network failure, never an answer such as 401 or 404) the recorded
// resolution is used, with a warning saying from when.
func (b *build) pullBase(ctx context.Context, ref string, platform v1.Platform) (v1.Image, error) {
	opts := append(append([]registry.Option{}, b.o.pull...), registry.WithPlatform(platform))
	bc := b.o.baseCache
	parsed, perr := name.ParseReference(ref)
	if bc == nil || perr != nil {
		return registry.Pull(ctx, ref, opts...)
	}
	plat := cache.PlatformKey(platform)
	if d, ok := parsed.(name.Digest); ok {
		if img := cachedByDigest(bc, d, plat); img != nil {
			return img, nil
		}
	}
	img, err := registry.Pull(ctx, ref, opts...)
	if err == nil {
		if serr := bc.StoreImage(parsed, plat, img); serr != nil {
			b.warn("base image cache: %v (the build goes on)", serr)
		}
		return img, nil
	}
	if !unreachable(err) {
		return nil, err
	}
	res, ok := bc.Resolved(parsed, plat)
	if !ok {
		return nil, err
	}
	cached, lerr := bc.LoadImage(res.Digest)
	if lerr != nil {
		return nil, fmt.Errorf("%w (its cached resolution to %s cannot be used: %v)", err, res.Digest, lerr)
	}
	b.warn("the registry of %s cannot be reached (%v): using the cached resolution from %s, %s",
		ref, err, res.Time.Format(time.RFC3339), res.Digest)
	return cached, nil
}

// cachedByDigest is the image a digest reference names, from the cache alone: through the
// recorded resolution (an index resolved for the platform), or the manifest itself. Nil when
// the cache does not hold it.
func cachedByDigest(bc *cache.BaseCache, ref name.Digest, platform string) v1.Image {
	d, err := v1.NewHash(ref.DigestStr())
	if err != nil {
		return nil
	}
	if res, ok := bc.Resolved(ref, platform); ok {
		d = res.Digest
	}
	img, err := bc.LoadImage(d)
	if err != nil {
		return nil
	}
	return img
}

// unreachable reports whether a pull failed without any answer from the registry: refused or
// reset connections, unreachable hosts or networks, timeouts, names that do not resolve. An
// HTTP answer (401, 404, 500 ...), a TLS failure or a cancelled build is not that.
func unreachable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return false
	}
	for _, e := range []error{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EHOSTUNREACH,
		syscall.ENETUNREACH, syscall.ETIMEDOUT, syscall.EHOSTDOWN} {
		if errors.Is(err, e) {
			return true
		}
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
