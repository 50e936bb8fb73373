package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Many more entries than the read-ahead window, small files (read ahead) and large ones
// (streamed by the writer) interleaved: every entry arrives in order with its own content.
func TestTakeReadsAheadInOrder(t *testing.T) {
	root := t.TempDir()
	f := fsOps{t, root}
	s := New(root, WithLayerDir(t.TempDir()))
	if err := s.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := 0; i < 3*prefetchAhead; i++ {
		size := 10 + i
		if i%50 == 0 {
			size = prefetchMaxFile + 1000 + i // streamed, not read ahead
		}
		unit := fmt.Sprintf("%d,", i)
		content := strings.Repeat(unit, size/len(unit)+1)[:size]
		p := fmt.Sprintf("/d%02d/f%04d", i%7, i)
		f.write(p, content, 0o644)
		want[p[1:]] = content
	}
	l, err := s.Take(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	seen := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		b, _ := io.ReadAll(tr)
		if w, ok := want[hdr.Name]; !ok || !bytes.Equal(b, []byte(w)) {
			t.Fatalf("%s: %d bytes, want the file's own %d bytes", hdr.Name, len(b), len(w))
		}
		seen++
	}
	if seen != len(want) {
		t.Fatalf("%d files in the layer, want %d", seen, len(want))
	}
}

// A file that disappears between the walk and the read fails the layer with its name, and
// neither that nor a cancelled context leaves reader goroutines behind.
func TestTakeReadAheadErrorsAndCancel(t *testing.T) {
	before := runtime.NumGoroutine()
	root := t.TempDir()
	f := fsOps{t, root}
	for i := 0; i < 2*prefetchAhead; i++ {
		f.write(fmt.Sprintf("/f%04d", i), "content", 0o644)
	}
	s := New(root, WithLayerDir(t.TempDir()))
	changes, err := func() ([]change, error) {
		cur := state{}
		if err := walkState(context.Background(), root, "/", &s.opts, cur); err != nil {
			return nil, err
		}
		ch, _, err := (&differ{old: state{}, cur: cur}).changes()
		return ch, err
	}()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(f.host("/f0100")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.write(context.Background(), changes); err == nil || !strings.Contains(err.Error(), "/f0100") {
		t.Fatalf("write after a file vanished: %v, want an error naming /f0100", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.write(ctx, changes); !errors.Is(err, context.Canceled) {
		t.Fatalf("write with a cancelled context: %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines left running (%d before)", n, before)
	}
}

func TestTakeReportsProgress(t *testing.T) {
	root := t.TempDir()
	f := fsOps{t, root}
	var calls []string
	s := New(root, WithLayerDir(t.TempDir()), WithProgress(5, func(entries int, bytes int64) {
		calls = append(calls, fmt.Sprintf("%d:%d", entries, bytes))
	}))
	if err := s.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 12; i++ {
		f.write(fmt.Sprintf("/f%02d", i), "abc", 0o644) // 12 entries of 3 bytes
	}
	if _, err := s.Take(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(calls, " "); got != "5:15 10:30" {
		t.Fatalf("progress calls %q, want after 5 and 10 entries", got)
	}
}
