package cache

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Result is the outcome of a Lookup.
type Result struct {
	Hit    bool
	Layer  v1.Layer // the cached layer on a hit (nil for an Empty entry)
	Entry  Entry
	Reason string // on a miss: why, naming the input that changed where it can
}

// Lookup asks store for key and decides hit or miss: an entry older than ttl (when ttl > 0)
// is a miss. On a miss it fetches the last entry of lineage (when given) to name the first
// input that differs from inputs. An error from the store other than "not found" is a miss too,
// with the error as its reason: a cache never fails a build.
func Lookup(ctx context.Context, store Store, key, parent Key, inputs []Input, lineage string, ttl time.Duration, now time.Time) Result {
	layer, e, err := store.Get(ctx, key)
	switch {
	case errors.Is(err, ErrNotFound):
		return Result{Reason: "no entry" + explainFrom(ctx, store, lineage, parent, inputs)}
	case err != nil:
		return Result{Reason: fmt.Sprintf("cache %s unreadable: %v", store, err)}
	}
	if age := now.Sub(e.Created); ttl > 0 && age > ttl {
		return Result{Entry: e, Reason: fmt.Sprintf("entry expired (age %s > ttl %s)", age.Round(time.Second), ttl)}
	}
	return Result{Hit: true, Layer: layer, Entry: e}
}

func explainFrom(ctx context.Context, store Store, lineage string, parent Key, inputs []Input) string {
	if lineage == "" {
		return ""
	}
	prev, err := store.Last(ctx, lineage)
	if err != nil {
		return " (no earlier entry for this instruction)"
	}
	return ": " + Explain(prev, parent, inputs)
}
