package builder

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

func acquireOK(t *testing.T, c cacheDirs, cs cacheSpec) *cacheLease {
	t.Helper()
	l, err := c.acquire(context.Background(), cs, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestCacheDirsCreateOnceWithModeAndSeed(t *testing.T) {
	c := cacheDirs{root: filepath.Join(t.TempDir(), "mounts")}
	seeded := 0
	cs := cacheSpec{id: "/root/.cache", sharing: instructions.MountSharingShared, mode: 0o750, uid: 12, gid: 34,
		seed: func(dir string) error { seeded++; return os.WriteFile(filepath.Join(dir, "seed"), []byte("s"), 0o644) }}
	l := acquireOK(t, c, cs)
	if err := os.WriteFile(filepath.Join(l.dir, "kept"), []byte("k"), 0o644); err != nil {
		t.Fatal(err)
	}
	l.release()
	l = acquireOK(t, c, cs)
	defer l.release()
	if seeded != 1 {
		t.Errorf("seeded %d times, want once", seeded)
	}
	for _, f := range []string{"seed", "kept"} {
		if _, err := os.Stat(filepath.Join(l.dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	fi, err := os.Stat(l.dir)
	if err != nil {
		t.Fatal(err)
	}
	if st := statOwner(fi); fi.Mode().Perm() != 0o750 || st != [2]uint32{12, 34} {
		t.Errorf("cache dir mode %v owner %v, want 0750 12:34", fi.Mode().Perm(), st)
	}
	if !strings.HasPrefix(filepath.Base(l.dir), "root_.cache-") {
		t.Errorf("cache dir name %q does not show its id", filepath.Base(l.dir))
	}
}

func TestCacheDirsSharing(t *testing.T) {
	c := cacheDirs{root: t.TempDir()}
	spec := func(sharing instructions.ShareMode) cacheSpec {
		return cacheSpec{id: "x", sharing: sharing, mode: 0o755}
	}
	// shared: two holders at once, same directory.
	a := acquireOK(t, c, spec(instructions.MountSharingShared))
	b := acquireOK(t, c, spec(instructions.MountSharingShared))
	if a.dir != b.dir {
		t.Errorf("shared users got %s and %s", a.dir, b.dir)
	}
	// private: a directory of its own while another holds the first one.
	p := acquireOK(t, c, spec(instructions.MountSharingPrivate))
	if p.dir == a.dir {
		t.Errorf("private user got the busy directory %s", p.dir)
	}
	a.release()
	b.release()
	p.release()

	// locked: the second waits (and is told) until the first releases.
	first := acquireOK(t, c, spec(instructions.MountSharingLocked))
	waited := make(chan struct{}, 1)
	got := make(chan *cacheLease)
	go func() {
		l, err := c.acquire(context.Background(), spec(instructions.MountSharingLocked), func() { waited <- struct{}{} })
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("the second locked user was never told it waits")
	}
	select {
	case <-got:
		t.Fatal("the second locked user got the cache while the first held it")
	case <-time.After(200 * time.Millisecond):
	}
	first.release()
	second := <-got
	if second == nil || second.dir != first.dir {
		t.Fatalf("second locked lease %+v", second)
	}
	// A private user now gets the first instance back, or a free one: never a held one.
	p = acquireOK(t, c, spec(instructions.MountSharingPrivate))
	if p.dir == second.dir {
		t.Errorf("private user got the locked directory")
	}
	second.release()
	p.release()

	// A cancelled wait gives up.
	hold := acquireOK(t, c, spec(instructions.MountSharingLocked))
	defer hold.release()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	if _, err := c.acquire(ctx, spec(instructions.MountSharingLocked), nil); err == nil {
		t.Error("a cancelled wait for a locked cache succeeded")
	}
}

func TestCacheNameIsSafeAndUnique(t *testing.T) {
	a, b := cacheName("/a/b"), cacheName("/a_b")
	if a == b || strings.Contains(a, "/") {
		t.Errorf("names %q and %q", a, b)
	}
}

// statOwner is a file's uid and gid.
func statOwner(fi os.FileInfo) [2]uint32 {
	st := fi.Sys().(*syscall.Stat_t)
	return [2]uint32{st.Uid, st.Gid}
}
