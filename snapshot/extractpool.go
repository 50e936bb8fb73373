package snapshot

import (
	"archive/tar"
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/kilnbuild/kiln/internal/sparse"
	"golang.org/x/sys/unix"
)

// WithExtractWorkers sets how many goroutines create directories, files and symlinks while
// Extract reads the layer (default: none on one core, else twice the cores, 4 to 8). 1
// extracts everything on the reading goroutine.
func WithExtractWorkers(n int) Option {
	return func(o *options) { o.workers = n }
}

const (
	// maxQueuedFile: regular files up to this size are read into memory and written by a
	// writer; larger and sparse ones are written by the reading goroutine as they stream.
	maxQueuedFile = 1 << 20
	// maxQueuedBytes bounds the file content read ahead of the writers: a few MiB keep four
	// writers busy on small files (a Debian base's average 25 KB); 64 MiB bought no speed in
	// the warm benchmark and cost 40 MB more peak memory.
	maxQueuedBytes = 4 << 20
	// queueLen bounds the entries waiting for each writer.
	queueLen = 4096
	// sweepEvery is how many dispatches pass between sweeps of finished jobs.
	sweepEvery = 4096
)

// extractWorkers is the number of writers: as set, else none with one core, else twice the
// cores (4 to 8), since a writer mostly waits in the kernel for the file system (creating an
// inode takes it 30 µs on a fresh ext4, and up to 1 ms right after a large tree was deleted).
func extractWorkers(o *options) int {
	if o.workers > 0 {
		return o.workers
	}
	if n := runtime.GOMAXPROCS(0); n > 1 {
		return min(max(2*n, 4), 8)
	}
	return 1
}

// entryJob creates one directory, small regular file or symlink. Its run touches nothing of
// the extractor's state, so that a writer goroutine can run it.
type entryJob struct {
	host  string
	hdr   *tar.Header
	data  []byte    // a regular file's content
	after *entryJob // the job creating host's directory, when it was queued at dispatch
	// spread makes a directory by dirspread.Mkdir (extractor.spreadsAt).
	spread bool
	done   chan struct{}
}

func (j *entryJob) run() error {
	switch j.hdr.Typeflag {
	case tar.TypeDir:
		if err := j.mkdir(); err != nil && err != unix.EEXIST {
			return &os.PathError{Op: "mkdir", Path: j.host, Err: err}
		}
		return ownerAndXattrs(j.host, j.hdr) // mode and times once the content is in
	case tar.TypeSymlink:
		if err := unix.Symlink(j.hdr.Linkname, j.host); err != nil {
			return &os.PathError{Op: "symlink", Path: j.host, Err: err}
		}
		if err := ownerAndXattrs(j.host, j.hdr); err != nil {
			return err
		}
		return setTimes(j.host, atimeOf(j.hdr), j.hdr.ModTime)
	}
	fd, err := createRegular(j.host)
	if err != nil {
		return err
	}
	err = sparse.WriteAll(fd, j.data)
	if err != nil {
		err = fmt.Errorf("writing %s: %w", j.host, err)
	} else {
		err = regularMetadata(fd, j.host, j.hdr)
	}
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = &os.PathError{Op: "close", Path: j.host, Err: cerr}
	}
	return err
}

func (j *entryJob) mkdir() error { return spreadMkdir(j.host, 0o700, j.spread) }

// writers runs entry jobs on goroutines, one queue each. The entries of one directory, and
// the directory itself, all go to the same writer: creations in a directory take its lock in
// the kernel, so spreading them would only make writers wait on each other, while different
// directories proceed in parallel.
type writers struct {
	ctx    context.Context
	queues []chan *entryJob
	wg     sync.WaitGroup // the goroutines
	jobs   sync.WaitGroup // dispatched jobs not yet done
	failed atomic.Bool
	mu     sync.Mutex
	cond   sync.Cond
	queued int // bytes of file content waiting in the queues
	err    error
	// bufs recycles file content buffers by size class (1 KiB << i), sparing the allocator
	// and the collector a layer's worth of garbage.
	bufs [11]sync.Pool
}

// buffer returns a buffer of n bytes (at most maxQueuedFile), not zeroed.
func (w *writers) buffer(n int) []byte {
	c := bufClass(n)
	if b, ok := w.bufs[c].Get().(*[]byte); ok {
		return (*b)[:n]
	}
	return make([]byte, n, 1024<<c)
}

func (w *writers) recycle(b []byte) {
	if c := bufClass(cap(b)); cap(b) == 1024<<c {
		w.bufs[c].Put(&b)
	}
}

// bufClass is the smallest class whose buffers hold n bytes.
func bufClass(n int) int {
	c := 0
	for 1024<<c < n {
		c++
	}
	return c
}

func newWriters(ctx context.Context, n int) *writers {
	w := &writers{ctx: ctx, queues: make([]chan *entryJob, n)}
	w.cond.L = &w.mu
	for i := range w.queues {
		q := make(chan *entryJob, queueLen)
		w.queues[i] = q
		w.wg.Add(1)
		go w.work(q)
	}
	return w
}

// dispatch queues j for the writer of directory dir (the same writer for the same dir),
// waiting while too much content is queued.
func (w *writers) dispatch(j *entryJob, dir string) {
	w.mu.Lock()
	for w.queued > 0 && w.queued+len(j.data) > maxQueuedBytes && !w.failed.Load() {
		w.cond.Wait()
	}
	w.queued += len(j.data)
	w.mu.Unlock()
	h := fnv.New32a()
	h.Write([]byte(dir))
	w.jobs.Add(1)
	w.queues[h.Sum32()%uint32(len(w.queues))] <- j
}

func (w *writers) work(q chan *entryJob) {
	defer w.wg.Done()
	for j := range q {
		if j.after != nil {
			<-j.after.done // queued earlier, so never behind j: no cycle
		}
		if !w.failed.Load() {
			if err := w.ctx.Err(); err != nil {
				w.fail(err)
			} else if err := j.run(); err != nil {
				w.fail(fmt.Errorf("extracting %q: %w", j.hdr.Name, err))
			}
		}
		w.mu.Lock()
		w.queued -= len(j.data)
		w.cond.Broadcast()
		w.mu.Unlock()
		w.recycle(j.data)
		j.data = nil
		close(j.done)
		w.jobs.Done()
	}
}

// fail records the first error; the jobs after it are skipped.
func (w *writers) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.failed.Store(true)
	w.cond.Broadcast()
	w.mu.Unlock()
}

func (w *writers) error() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// wait returns once every dispatched job is done, with the first error.
func (w *writers) wait() error {
	w.jobs.Wait()
	return w.error()
}

// stop skips what is still queued and ends the goroutines.
func (w *writers) stop() {
	w.fail(errStopped)
	for _, q := range w.queues {
		close(q)
	}
	w.wg.Wait()
}

var errStopped = fmt.Errorf("extraction stopped")

// dispatch creates a directory, small file or symlink: on a writer when there are writers
// (the reading goroutine goes on with the next entries), at once when there are none.
func (e *extractor) dispatch(host string, hdr *tar.Header, data []byte) error {
	return e.queue(&entryJob{host: host, hdr: hdr, data: data})
}

// dispatchDir is dispatch for a directory; a new one (not there before this entry) is placed
// by dirspread where the root asks for it.
func (e *extractor) dispatchDir(host string, hdr *tar.Header, isNew bool) error {
	return e.queue(&entryJob{host: host, hdr: hdr, spread: isNew && e.spreadsAt(host)})
}

func (e *extractor) queue(j *entryJob) error {
	host, hdr := j.host, j.hdr
	if e.pool == nil {
		return j.run()
	}
	dir := filepath.Dir(host)
	if p := e.pending[dir]; p != nil && p.hdr.Typeflag == tar.TypeDir {
		j.after = p
	}
	j.done = make(chan struct{})
	if e.dispatched++; e.dispatched%sweepEvery == 0 {
		e.sweep()
	}
	e.pending[host] = j
	// A directory goes to the writer of its own entries, which then never wait for another.
	if hdr.Typeflag == tar.TypeDir {
		dir = host
	}
	e.pool.dispatch(j, dir)
	return nil
}

// sweep forgets the jobs that are done, so that pending stays small on layers of many files.
func (e *extractor) sweep() {
	for h, j := range e.pending {
		select {
		case <-j.done:
			delete(e.pending, h)
		default:
		}
	}
}

// settle waits until every dispatched job is done: before anything is removed, hardlinked or
// looked at on disk in a way the writers' pending work would change.
func (e *extractor) settle() error {
	if e.pool == nil {
		return nil
	}
	err := e.pool.wait()
	clear(e.pending)
	return err
}

// await waits until the directory dir exists, when a writer was to create it.
func (e *extractor) await(dir string) error {
	if j := e.pending[dir]; j != nil {
		<-j.done
		return e.pool.error()
	}
	return nil
}

// pendingVFS resolves paths as they will be once the queued jobs are done: a directory,
// file or symlink a writer is yet to create is seen as if it were there.
type pendingVFS struct{ e *extractor }

func (v pendingVFS) Lstat(name string) (os.FileInfo, error) {
	if j := v.e.pending[filepath.Clean(name)]; j != nil {
		return j.hdr.FileInfo(), nil
	}
	return os.Lstat(name)
}

func (v pendingVFS) Readlink(name string) (string, error) {
	if j := v.e.pending[filepath.Clean(name)]; j != nil {
		if j.hdr.Typeflag != tar.TypeSymlink {
			return "", &os.PathError{Op: "readlink", Path: name, Err: unix.EINVAL}
		}
		return j.hdr.Linkname, nil
	}
	return os.Readlink(name)
}
