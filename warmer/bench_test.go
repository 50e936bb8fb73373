package warmer

import (
	"context"
	"testing"

	"github.com/kilnbuild/kiln/internal/testenv"
	"github.com/kilnbuild/kiln/registry"
)

// BenchmarkWarmDebian caches the Debian base (one ~60 MB layer) from a local registry into an
// empty directory (cold: download, verify, store), and again into a full one (cached: resolve
// the tag, verify the cached files once per process, skip).
func BenchmarkWarmDebian(b *testing.B) {
	reg := testenv.StartRegistry(b, testenv.RegistryOptions{})
	ref := testenv.PushDebian(b, reg, "base/debian:bench")
	pull := WithPullOptions(registry.WithInsecure(reg.Addr))
	ctx := context.Background()
	b.Run("cold", func(b *testing.B) {
		var bytes int64
		for i := 0; i < b.N; i++ {
			res, err := Warm(ctx, b.TempDir(), Refs(ref), pull)
			if err != nil {
				b.Fatal(err)
			}
			bytes = res[0].Downloaded
		}
		b.SetBytes(bytes)
	})
	b.Run("cached", func(b *testing.B) {
		dir := b.TempDir()
		if _, err := Warm(ctx, dir, Refs(ref), pull); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			res, err := Warm(ctx, dir, Refs(ref), pull)
			if err != nil || !res[0].Skipped {
				b.Fatalf("%+v %v", res, err)
			}
		}
	})
}
