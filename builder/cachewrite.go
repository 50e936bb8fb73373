package builder

import (
	"context"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/cache"
)

// cacheWriteJobs bounds concurrent cache writes so they never crowd out the build's own I/O.
const cacheWriteJobs = 2

// cacheWriter stores cache entries in the background, off the build's critical path.
type cacheWriter struct {
	ctx    context.Context
	cancel context.CancelFunc
	sem    chan struct{}
	wg     sync.WaitGroup
	warn   func(format string, args ...any)

	mu    sync.Mutex
	after []func() // run at the end of wait (atEnd)
}

func newCacheWriter(ctx context.Context, warn func(string, ...any)) *cacheWriter {
	ctx, cancel := context.WithCancel(ctx)
	return &cacheWriter{ctx: ctx, cancel: cancel, sem: make(chan struct{}, cacheWriteJobs), warn: warn}
}

// put stores layer (nil for an empty entry) under e.Key; a failure warns.
func (w *cacheWriter) put(store cache.Store, layer v1.Layer, e cache.Entry, what string) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		select {
		case w.sem <- struct{}{}:
		case <-w.ctx.Done():
			return
		}
		defer func() { <-w.sem }()
		if err := store.Put(w.ctx, layer, e); err != nil {
			w.warn("writing cache entry %s for %s to %s failed (the build goes on): %v", e.Key.Short(), what, store, err)
		}
	}()
}

// wait waits up to timeout for the writes started so far, then cancels those still running,
// then runs the atEnd functions.
func (w *cacheWriter) wait(timeout time.Duration) {
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		w.warn("cache writes still running after %s were cancelled", timeout)
		w.cancel()
		<-done
	}
	w.cancel()
	w.runAtEnd()
}

// atEnd runs f at the end of wait, once the writes are done (pruning, the summary).
func (w *cacheWriter) atEnd(f func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.after = append(w.after, f)
}

func (w *cacheWriter) runAtEnd() {
	w.mu.Lock()
	after := w.after
	w.after = nil
	w.mu.Unlock()
	for _, f := range after {
		f()
	}
}
