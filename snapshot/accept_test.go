package snapshot

import (
	"context"
	"os"
	"testing"
)

// TestAccept: paths accepted after a change made elsewhere (a layer unpacked into the root)
// are not shipped again by the next snapshot, and a directory replaced by a file takes its old
// children out of the baseline, so no whiteouts for them follow.
func TestAccept(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	root := t.TempDir()
	f := fsOps{t: t, root: root}
	f.write("/bin/sh", "sh", 0o755)
	f.write("/app/old/x", "x", 0o644)
	s := New(root, WithLayerDir(t.TempDir()))
	f.must(s.Reset(ctx))

	// What a --link layer brought: a new file, and /app/old replaced by a file.
	f.write("/opt/new", "n", 0o644)
	f.must(os.RemoveAll(f.host("/app/old")))
	f.write("/app/old", "now a file", 0o644)
	f.must(s.Accept(ctx, []string{"/opt", "/opt/new", "/app", "/app/old"}))

	// The next instruction's own change is all the next layer holds.
	f.write("/bin/tool", "t", 0o755)
	l, err := s.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	assertLines(t, layerEntries(t, l), []string{"bin/ 5 0755 0:0", `bin/tool 0 0755 0:0 1 "t"`})
	if err := s.Accept(ctx, []string{"/../x"}); err == nil {
		t.Error("Accept of a path escaping the root succeeded")
	}
}
