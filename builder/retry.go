package builder

import (
	"context"
	"time"
)

// withRetries runs fn, and up to retries more times while it fails, waiting a little longer
// before each new attempt. onRetry is told about each failure that gets another attempt.
func withRetries(ctx context.Context, retries int, fn func() error, onRetry func(attempt int, err error)) error {
	wait := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt > retries || ctx.Err() != nil {
			return err
		}
		onRetry(attempt, err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait *= 2
	}
}
