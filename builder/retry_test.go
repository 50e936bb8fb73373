package builder

import (
	"context"
	"errors"
	"testing"
)

func TestWithRetries(t *testing.T) {
	boom := errors.New("boom")
	calls, retried := 0, 0
	err := withRetries(context.Background(), 2, func() error {
		calls++
		if calls < 2 {
			return boom
		}
		return nil
	}, func(int, error) { retried++ })
	if err != nil || calls != 2 || retried != 1 {
		t.Fatalf("err %v calls %d retried %d, want success on the 2nd call", err, calls, retried)
	}
	calls = 0
	err = withRetries(context.Background(), 1, func() error { calls++; return boom }, func(int, error) {})
	if !errors.Is(err, boom) || calls != 2 {
		t.Fatalf("err %v calls %d, want boom after 2 calls", err, calls)
	}
	calls = 0
	err = withRetries(context.Background(), 0, func() error { calls++; return boom }, func(int, error) {})
	if !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("no retries: err %v calls %d", err, calls)
	}
}
