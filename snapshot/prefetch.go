package snapshot

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// The tar writer is one goroutine; reading many small files is mostly syscalls. Readers on
// both cores fetch the extended attributes and the content of small files a bounded number of
// entries ahead of it, so those syscalls overlap the tar writing and each other.
const (
	prefetchWorkers = 2
	prefetchAhead   = 128      // entries read ahead of the writer
	prefetchMaxFile = 64 << 10 // larger files are streamed by the writer itself
)

// fetched is what the readers found for one change.
type fetched struct {
	xattrs map[string]string
	data   []byte // content of a small regular file; nil means the writer streams it
	err    error
	done   chan struct{}
}

// prefetcher runs the readers for one layer's changes.
type prefetcher struct {
	slots  []*fetched
	tokens chan struct{} // one per entry in flight ahead of the writer
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startPrefetch(ctx context.Context, root string, changes []change) *prefetcher {
	ctx, cancel := context.WithCancel(ctx)
	p := &prefetcher{slots: make([]*fetched, len(changes)), tokens: make(chan struct{}, prefetchAhead), cancel: cancel}
	for i := range p.slots {
		p.slots[i] = &fetched{done: make(chan struct{})}
	}
	work := make(chan int, prefetchAhead)
	p.wg.Add(1)
	go func() { // hands out entries in order, at most prefetchAhead ahead of the writer
		defer p.wg.Done()
		defer close(work)
		for i := range changes {
			select {
			case p.tokens <- struct{}{}:
			case <-ctx.Done():
				return
			}
			work <- i
		}
	}()
	for w := 0; w < prefetchWorkers; w++ {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for i := range work {
				fetchOne(root, changes[i], p.slots[i])
				close(p.slots[i].done)
			}
		}()
	}
	return p
}

// get waits for entry i and releases its place in the window.
func (p *prefetcher) get(ctx context.Context, i int) (*fetched, error) {
	select {
	case <-p.slots[i].done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	<-p.tokens
	f := p.slots[i]
	p.slots[i] = nil // let the content go as soon as it is written
	return f, nil
}

// stop ends the readers (after an error or at the end) and waits for them: the dispatcher
// gives up on cancellation, and the workers finish the few entries already handed out.
func (p *prefetcher) stop() {
	p.cancel()
	p.wg.Wait()
}

func fetchOne(root string, c change, f *fetched) {
	if c.kind != changeAdd {
		return
	}
	host := hostPath(root, c.path)
	if c.rec.isDir() || c.rec.isReg() || c.rec.isSymlink() || c.rec.mode&unix.S_IFMT == unix.S_IFIFO ||
		c.rec.mode&unix.S_IFMT == unix.S_IFCHR || c.rec.mode&unix.S_IFMT == unix.S_IFBLK {
		if f.xattrs, f.err = readXattrs(host); f.err != nil {
			return
		}
	}
	if c.rec.isReg() && c.rec.size > 0 && c.rec.size <= prefetchMaxFile {
		f.data, f.err = readSmall(host, c.path, c.rec.size)
	}
}

// readSmall reads exactly size bytes of a small file (never following a symlink).
func readSmall(host, imagePath string, size int64) ([]byte, error) {
	fd, err := unix.Open(host, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s for the layer: %w", imagePath, err)
	}
	defer unix.Close(fd)
	buf := make([]byte, size)
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("copying %s into the layer: %w", imagePath, err)
		}
		if m == 0 {
			return nil, fmt.Errorf("copying %s into the layer: file shrank from %d to %d bytes while snapshotting", imagePath, size, n)
		}
		n += m
	}
	return buf, nil
}
