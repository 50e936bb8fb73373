package executor

import (
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// progressInterval is how often a long push reports how far it got.
const progressInterval = 2 * time.Second

// logPushProgress renders registry upload updates as a log line every progressInterval (and
// a last one when the push ends), so a long push of big layers visibly moves. It returns when
// the channel is closed.
func logPushProgress(log Log, what string, updates <-chan v1.Update) {
	var last v1.Update
	lastLog := time.Now()
	for u := range updates {
		if u.Error != nil {
			continue
		}
		last = u
		if time.Since(lastLog) >= progressInterval && u.Total > 0 {
			log.Infof("Pushing %s: %s of %s (%d%%)", what, mib(u.Complete), mib(u.Total), 100*u.Complete/u.Total)
			lastLog = time.Now()
		}
	}
	if last.Total > 0 {
		debugf(log, "Pushed %s: %s uploaded or already present", what, mib(last.Total))
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
