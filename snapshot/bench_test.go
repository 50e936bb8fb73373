package snapshot

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// makeTree writes files spread over dirs of 100 files each.
func makeTree(b *testing.B, root string, files, size int) {
	b.Helper()
	data := make([]byte, size)
	rnd := rand.New(rand.NewSource(1))
	for i := 0; i < files; i++ {
		// half random, half zeros, different in every file: a realistic ratio that a
		// long-window compressor cannot beat by spotting identical files.
		rnd.Read(data[:size/2])
		dir := filepath.Join(root, fmt.Sprintf("d%03d", i/100))
		if i%100 == 0 {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", i%100)), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTake: a root of 20k files where 5k change between snapshots.
func BenchmarkTake(b *testing.B) {
	ctx := context.Background()
	root := b.TempDir()
	makeTree(b, root, 20000, 512)
	s := New(root, WithLayerDir(b.TempDir()))
	if err := s.Reset(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for j := 0; j < 5000; j++ {
			p := filepath.Join(root, fmt.Sprintf("d%03d", j*4/100), fmt.Sprintf("f%03d", j*4%100))
			if err := os.WriteFile(p, []byte(fmt.Sprintf("changed %d %d", i, j)), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		l, err := s.Take(ctx)
		if err != nil || l == nil {
			b.Fatalf("Take = %v, %v", l, err)
		}
		b.StopTimer()
		l.Remove()
		b.StartTimer()
	}
}

// BenchmarkWriteLayer: a 100 MB layer, gzip (default) and zstd.
func BenchmarkWriteLayer(b *testing.B) {
	root := b.TempDir()
	makeTree(b, root, 100, 1<<20)
	for _, comp := range []Compression{{Algorithm: "gzip"}, {Algorithm: "zstd"}} {
		b.Run(comp.Algorithm, func(b *testing.B) {
			b.SetBytes(100 << 20)
			layerDir := b.TempDir()
			for i := 0; i < b.N; i++ {
				l, err := New(root, WithLayerDir(layerDir), WithCompression(comp)).Take(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				size, _ := l.Size()
				b.ReportMetric(float64(size)/float64(100<<20), "ratio")
				l.Remove()
				b.StartTimer()
			}
		})
	}
}

// BenchmarkExtract: applying a 20k-file layer (512 B files) to an empty root.
func BenchmarkExtract(b *testing.B) {
	src := b.TempDir()
	makeTree(b, src, 20000, 512)
	l, err := New(src, WithLayerDir(b.TempDir())).Take(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	tarPath := filepath.Join(b.TempDir(), "layer.tar")
	rc, err := l.Uncompressed()
	if err != nil {
		b.Fatal(err)
	}
	out, err := os.Create(tarPath)
	if err != nil {
		b.Fatal(err)
	}
	n, err := io.Copy(out, rc)
	if err != nil {
		b.Fatal(err)
	}
	rc.Close()
	out.Close()
	b.SetBytes(n)
	dsts := b.TempDir()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := os.Open(tarPath)
		if err != nil {
			b.Fatal(err)
		}
		if err := Extract(context.Background(), filepath.Join(dsts, fmt.Sprint(i)), f); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
