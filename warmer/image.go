package warmer

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/cache"
	"github.com/kilnbuild/kiln/internal/units"
	"github.com/kilnbuild/kiln/registry"
)

// warmOne caches one image: resolve it, skip it when cached in full (unless forced), else
// download its layers into the cache, then record its manifest, config and resolution.
func warmOne(ctx context.Context, bc *cache.BaseCache, dir string, r Ref, o *options) Result {
	start := time.Now()
	res := Result{Ref: r}
	fail := func(err error) Result {
		res.Duration = time.Since(start)
		res.Err = fmt.Errorf("caching %s (registry %s) in %s: %w", r.Image, registryOf(r.Image), dir, err)
		return res
	}
	platform, err := platformOf(r, o.platform)
	if err != nil {
		return fail(err)
	}
	ref, err := name.ParseReference(r.Image)
	if err != nil {
		return fail(err)
	}
	plat := cache.PlatformKey(platform)
	img, err := registry.Pull(ctx, r.Image, append(append([]registry.Option{}, o.pull...), registry.WithPlatform(platform))...)
	if err != nil {
		return fail(err)
	}
	if res.Digest, err = img.Digest(); err != nil {
		return fail(err)
	}
	m, err := img.Manifest()
	if err != nil {
		return fail(err)
	}
	res.Layers = len(m.Layers)
	var total int64
	for _, l := range m.Layers {
		total += l.Size
	}
	if !o.force && bc.HasImage(res.Digest) {
		if err := bc.StoreImage(ref, plat, img); err != nil { // refreshes the resolution's time
			return fail(err)
		}
		res.Skipped, res.Duration = true, time.Since(start)
		o.log.Infof("%s (%s): already cached as %s (%s, %s): skipped (--force downloads it again)",
			r.Image, plat, res.Digest, layerCount(res.Layers), units.Bytes(total))
		return res
	}
	o.log.Infof("Caching %s (%s) as %s: %s, %s", r.Image, plat, res.Digest, layerCount(res.Layers), units.Bytes(total))
	cached := bc.Image(img)
	if o.force {
		cached = bc.Refresh(img)
	}
	if res.Downloaded, err = fetchLayers(ctx, cached, bc, dir, o); err != nil {
		return fail(err)
	}
	if err := bc.StoreImage(ref, plat, img); err != nil {
		return fail(err)
	}
	res.Duration = time.Since(start)
	o.log.Infof("Cached %s as %s: %s downloaded in %s", r.Image, res.Digest, units.Bytes(res.Downloaded), round(res.Duration))
	return res
}

// fetchLayers reads every layer of img (a cache.BaseCache view) to its end, o.jobs at a time,
// which stores each one in the cache verified; it returns the bytes downloaded.
func fetchLayers(ctx context.Context, img v1.Image, bc *cache.BaseCache, dir string, o *options) (int64, error) {
	layers, err := img.Layers()
	if err != nil {
		return 0, err
	}
	var (
		mu         sync.Mutex
		downloaded int64
		firstErr   error
		wg         sync.WaitGroup
	)
	sem := make(chan struct{}, o.jobs)
	for i, l := range layers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			n, err := fetchLayer(l, i+1, len(layers), bc, dir, o)
			mu.Lock()
			defer mu.Unlock()
			downloaded += n
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}()
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return downloaded, firstErr
}

// fetchLayer downloads one layer into the cache unless it is there already (and not forced),
// then makes its unpack form (see cache.BaseCache.OpenForm), so that the first build's unpack
// reads it too.
func fetchLayer(l v1.Layer, n, of int, bc *cache.BaseCache, dir string, o *options) (int64, error) {
	d, err := l.Digest()
	if err != nil {
		return 0, err
	}
	size, _ := l.Size()
	what := fmt.Sprintf("  layer %d/%d %s", n, of, d)
	var got int64
	if !o.force && bc.Intact(d) {
		o.log.Infof("%s (%s): already cached", what, units.Bytes(size))
	} else if got, err = download(l, d, what, size, bc, dir, o); err != nil {
		return got, err
	}
	return got, makeForm(l, d, what, bc, o)
}

// download reads one layer through the cache, which stores it verified.
func download(l v1.Layer, d v1.Hash, what string, size int64, bc *cache.BaseCache, dir string, o *options) (int64, error) {
	start := time.Now()
	rc, err := l.Compressed()
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", d, err)
	}
	var count counter
	stop := o.progress(what, size, &count)
	got, err := io.Copy(&count, rc)
	stop()
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return got, fmt.Errorf("layer %s: %w", d, err)
	}
	if !bc.Intact(d) {
		return got, fmt.Errorf("layer %s was downloaded but could not be stored in %s (see the warning above)", d, dir)
	}
	took := time.Since(start)
	o.log.Infof("%s: %s in %s (%s/s)", what, units.Bytes(got), round(took),
		units.Bytes(int64(float64(got)/max(took.Seconds(), 0.001))))
	return got, nil
}

// makeForm makes the layer's unpack form unless it is kept already.
func makeForm(l v1.Layer, d v1.Hash, what string, bc *cache.BaseCache, o *options) error {
	diffID, err := l.DiffID()
	if err != nil {
		return fmt.Errorf("layer %s: %w", d, err)
	}
	start := time.Now()
	made, err := bc.MakeForm(d, diffID)
	if err != nil {
		return err
	}
	if made {
		o.log.Infof("%s: unpack form made in %s", what, round(time.Since(start)))
	}
	return nil
}

// counter counts the bytes written to it.
type counter struct{ n atomic.Int64 }

func (c *counter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return len(p), nil
}

// progress logs what, how much of size was read so far, every o.every until stop is called:
// a large layer on a slow link shows it is moving.
func (o *options) progress(what string, size int64, read *counter) (stop func()) {
	done := make(chan struct{})
	start := time.Now()
	go func() {
		t := time.NewTicker(o.every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				o.log.Infof("%s: %s of %s after %s", what, units.Bytes(read.n.Load()), units.Bytes(size), round(time.Since(start)))
			}
		}
	}()
	return func() { close(done) }
}

func layerCount(n int) string {
	if n == 1 {
		return "1 layer"
	}
	return fmt.Sprintf("%d layers", n)
}

func round(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}
