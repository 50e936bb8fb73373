package snapshot

import (
	"context"
	"os"
	"testing"
)

func TestTakePaths(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	root := t.TempDir()
	f := fsOps{t: t, root: root}
	f.write("/app/old", "old", 0o644)
	f.write("/other/keep", "k", 0o644)
	f.write("/gone/x", "x", 0o644)
	s := New(root, WithLayerDir(t.TempDir()))
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}

	f.write("/app/new/x", "x", 0o600)
	f.must(os.Remove(f.host("/app/old")))
	f.write("/other/y", "y", 0o644) // outside the paths: not in this layer
	l, err := s.TakePaths(ctx, []string{"/app/new", "app/old", "/app/new/x"})
	if err != nil {
		t.Fatal(err)
	}
	assertLines(t, layerEntries(t, l), []string{
		"app/ 5 0755 0:0",
		`app/.wh.old 0 0644 0:0 0 ""`,
		"app/new/ 5 0755 0:0",
		`app/new/x 0 0600 0:0 1 "x"`,
	})

	// A path that no longer exists becomes a whiteout; unknown ones are nothing.
	f.must(os.RemoveAll(f.host("/gone")))
	l, err = s.TakePaths(ctx, []string{"/gone", "/never-existed"})
	if err != nil {
		t.Fatal(err)
	}
	assertLines(t, layerEntries(t, l), []string{`.wh.gone 0 0644 0:0 0 ""`})

	// Only the other changes remain for a full Take: /app's baseline moved with TakePaths.
	l, err = s.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	assertLines(t, layerEntries(t, l), []string{"other/ 5 0755 0:0", `other/y 0 0644 0:0 1 "y"`})

	if _, err := s.TakePaths(ctx, []string{"../etc"}); err == nil {
		t.Fatal("TakePaths accepted a path escaping the root")
	}
	if l, err := s.TakePaths(ctx, []string{"/app"}); err != nil || l != nil {
		t.Fatalf("TakePaths on unchanged paths = %v, %v; want nil, nil", l, err)
	}
}
