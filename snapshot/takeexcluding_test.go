package snapshot

import (
	"context"
	"fmt"
	"os"
	"testing"
)

// TestTakeExcluding: below the excluded directories (a stage's VOLUME paths), what was added or
// changed stays out of the layer and out of the baseline, while the directories themselves, and
// deletions below them, are recorded as Kaniko records them.
func TestTakeExcluding(t *testing.T) {
	root := t.TempDir()
	f := fsOps{t: t, root: root}
	owner := fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
	f.write("/vol/old", "old", 0o644)
	f.write("/vol/gone", "gone", 0o644)
	f.write("/vol/sub/keep", "k", 0o644)
	f.mkdir("/other", 0o755)
	s := New(root, WithLayerDir(t.TempDir()))
	ctx := context.Background()
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	volumes := []string{"/vol", "/newvol/"}
	f.write("/newvol/hello", "hello", 0o644)
	f.write("/vol/old", "changed", 0o644)
	f.write("/vol/sub/new", "n", 0o644)
	f.must(os.Remove(f.host("/vol/gone")))
	f.write("/other/x", "x", 0o644)
	l, err := s.TakeExcluding(ctx, volumes)
	if err != nil {
		t.Fatal(err)
	}
	assertLines(t, layerEntries(t, l), []string{
		"newvol/ 5 0755 " + owner,
		"other/ 5 0755 " + owner,
		`other/x 0 0644 ` + owner + ` 1 "x"`,
		"vol/ 5 0755 " + owner,
		`vol/.wh.gone 0 0644 0:0 0 ""`,
	})
	// Nothing left to record: excluded content is not in the baseline, so it stays excluded,
	// and deleting what never reached a layer needs no whiteout.
	if l, err := s.TakeExcluding(ctx, volumes); err != nil || l != nil {
		t.Fatalf("second take: %v %v", l, err)
	}
	// (The volume directory itself is not excluded: its mtime moved, so it is in the layer again.)
	f.must(os.Remove(f.host("/newvol/hello")))
	f.must(os.Remove(f.host("/vol/sub/new")))
	l, err = s.TakeExcluding(ctx, volumes)
	if err != nil {
		t.Fatal(err)
	}
	assertLines(t, layerEntries(t, l), []string{"newvol/ 5 0755 " + owner})
	// A file below a volume that was in the baseline still becomes a whiteout when deleted.
	f.must(os.Remove(f.host("/vol/sub/keep")))
	l, err = s.TakeExcluding(ctx, volumes)
	if err != nil {
		t.Fatal(err)
	}
	assertLines(t, layerEntries(t, l), []string{"vol/ 5 0755 " + owner, "vol/sub/ 5 0755 " + owner, `vol/sub/.wh.keep 0 0644 0:0 0 ""`})
}
