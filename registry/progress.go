package registry

import (
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// progressMux merges the progress of several pushers (one per registry) into
// the caller's channel, summing their totals, and closes it when the push is
// over. go-containerregistry's Pusher never closes its progress channel, so
// the mux owns the channels it hands out.
type progressMux struct {
	out     chan<- v1.Update
	mu      sync.Mutex
	total   []int64
	done    []int64
	sources []chan v1.Update
	wg      sync.WaitGroup
}

func newProgressMux(out chan<- v1.Update) *progressMux {
	return &progressMux{out: out}
}

// source returns a new channel for one pusher, or nil without a consumer.
func (m *progressMux) source() chan<- v1.Update {
	if m.out == nil {
		return nil
	}
	ch := make(chan v1.Update, 16)
	m.mu.Lock()
	i := len(m.sources)
	m.sources = append(m.sources, ch)
	m.total = append(m.total, 0)
	m.done = append(m.done, 0)
	m.mu.Unlock()
	m.wg.Add(1)
	go m.forward(i, ch)
	return ch
}

func (m *progressMux) forward(i int, ch <-chan v1.Update) {
	defer m.wg.Done()
	for u := range ch {
		if u.Error != nil {
			continue // reported once, by finish
		}
		m.mu.Lock()
		m.total[i], m.done[i] = u.Total, u.Complete
		var sum v1.Update
		for j := range m.total {
			sum.Total += m.total[j]
			sum.Complete += m.done[j]
		}
		m.out <- sum // under the lock so updates stay ordered
		m.mu.Unlock()
	}
}

// finish closes the sources, sends err (if any) as the last update, closes
// the caller's channel and returns err. Call it once, after all pushes ended.
func (m *progressMux) finish(err error) error {
	if m.out == nil {
		return err
	}
	for _, ch := range m.sources {
		close(ch)
	}
	m.wg.Wait()
	if err != nil {
		m.out <- v1.Update{Error: err}
	}
	close(m.out)
	return err
}
