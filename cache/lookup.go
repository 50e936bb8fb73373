package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Result is the outcome of a Lookup.
type Result struct {
	Hit    bool
	Layer  v1.Layer // the cached layer on a hit (nil for an Empty entry)
	Entry  Entry
	Reason string // on a miss: why, naming the input that changed where it can
	// Warning is set on a miss because the entry could not be used (unreadable, or its layer
	// damaged): something the user should hear about, beyond an ordinary miss.
	Warning string
}

// Lookup asks store for key and decides hit or miss: an entry older than ttl (when ttl > 0)
// is a miss. On a miss it fetches the last entry of lineage (when given) to name the first
// input that differs from inputs. An error from the store other than "not found" is a miss too,
// with the error as its reason and a Warning: a cache never fails a build.
//
// A hit's layer is read through once and checked against its digest before it is returned,
// so a damaged entry (a blob whose content no longer matches, a missing blob) is a miss with a
// Warning and is never used: not unpacked, not put into the image.
func Lookup(ctx context.Context, store Store, key, parent Key, inputs []Input, lineage string, ttl time.Duration, now time.Time) Result {
	layer, e, err := store.Get(ctx, key)
	switch {
	case errors.Is(err, ErrNotFound):
		return Result{Reason: "no entry" + explainFrom(ctx, store, lineage, parent, inputs)}
	case err != nil && ctx.Err() != nil:
		return Result{Reason: ctx.Err().Error()}
	case err != nil:
		return Result{Reason: fmt.Sprintf("cache %s unreadable: %v", store, err),
			Warning: fmt.Sprintf("cache entry %s in %s cannot be read, so it is not used (the instruction runs): %v", key.Short(), store, err)}
	}
	if age := now.Sub(e.Created); ttl > 0 && age > ttl {
		return Result{Entry: e, Reason: fmt.Sprintf("entry expired (age %s > ttl %s)", age.Round(time.Second), ttl)}
	}
	if layer != nil {
		if err := verifyLayer(ctx, layer); err != nil {
			if ctx.Err() != nil {
				return Result{Reason: ctx.Err().Error()}
			}
			return Result{Entry: e, Reason: fmt.Sprintf("entry damaged: %v", err),
				Warning: fmt.Sprintf("cache entry %s in %s is damaged, so it is not used (the instruction runs): %v", key.Short(), store, err)}
		}
	}
	return Result{Hit: true, Layer: layer, Entry: e}
}

// verifyLayer reads the layer's compressed blob to its end and checks its size and digest.
func verifyLayer(ctx context.Context, l v1.Layer) error {
	want, err := l.Digest()
	if err != nil {
		return err
	}
	if want.Algorithm != "sha256" {
		return fmt.Errorf("layer %s: unsupported digest algorithm", want)
	}
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("layer %s: %w", want, err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, ctxReader{ctx: ctx, r: rc})
	if err != nil {
		return fmt.Errorf("layer %s: %w", want, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want.Hex {
		return fmt.Errorf("layer %s: its content (%d bytes) has digest sha256:%s", want, n, got)
	}
	if size, err := l.Size(); err == nil && size != n {
		return fmt.Errorf("layer %s: %d bytes, its manifest says %d", want, n, size)
	}
	return nil
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
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
