package snapshot

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/decompress"
	"github.com/kilnbuild/kiln/internal/dirspread"
	"golang.org/x/sys/unix"
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

// BenchmarkUnpackDebian unpacks the Debian base (see loadBenchLayer) into an empty root, each
// way (see unpackWays) as a sub-benchmark. Every tree stays until the benchmark ends: ext4
// without a journal scans past recently deleted inodes when it allocates new ones, so a tree
// deleted just before a run would slow the next one down for a minute or more. On a shared
// machine, compare the ratios of BenchmarkUnpackDebianRounds instead.
func BenchmarkUnpackDebian(b *testing.B) {
	requireRoot(b)
	work := b.TempDir()
	l := loadBenchLayer(b, work)
	b.Logf("layer: %s, %d MB as plain tar", l.what, l.size>>20)
	out := newOutDirs(b, work)
	for _, w := range unpackWays(b, l) {
		b.Run(w.name, func(b *testing.B) {
			if w.missing != "" {
				b.Skip(w.missing)
			}
			b.SetBytes(l.size)
			for i := 0; i < b.N; i++ {
				dst := out.next()
				if err := w.run(dst); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				out.done(b, dst)
				b.StartTimer()
			}
		})
	}
}

// BenchmarkUnpackDebianRounds runs every way of unpacking once per round, in turns, and
// reports each one's median and fastest run in seconds (metrics NAME-s and NAME-min-s): on
// a noisy machine, the ratios between ways hold better than the times of separate
// sub-benchmarks. Run it alone: -bench UnpackDebianRounds -benchtime 5x.
func BenchmarkUnpackDebianRounds(b *testing.B) {
	requireRoot(b)
	work := b.TempDir()
	l := loadBenchLayer(b, work)
	b.Logf("layer: %s, %d MB as plain tar", l.what, l.size>>20)
	out := newOutDirs(b, work)
	var ways []unpackWay
	for _, w := range unpackWays(b, l) {
		if w.missing == "" {
			ways = append(ways, w)
		}
	}
	took := make([][]time.Duration, len(ways))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := range ways {
			k = (k + i) % len(ways)
			dst := out.next()
			start := time.Now()
			if err := ways[k].run(dst); err != nil {
				b.Fatal(err)
			}
			took[k] = append(took[k], time.Since(start))
			out.done(b, dst)
		}
	}
	b.StopTimer()
	for k, w := range ways {
		reportRounds(b, w.name, took[k])
	}
}

// reportRounds reports the median and the fastest of one way's times, in seconds.
func reportRounds(b *testing.B, way string, took []time.Duration) {
	slices.Sort(took)
	name := strings.ReplaceAll(way, "/", "-")
	b.ReportMetric(took[len(took)/2].Seconds(), name+"-s")
	b.ReportMetric(took[0].Seconds(), name+"-min-s")
}

// unpackWay is one way of making the layer's tree in a fresh directory.
type unpackWay struct {
	name    string
	missing string // why it cannot run here
	run     func(dst string) error
}

// outDirs hands out the directories trees are made in: under work, kept until the benchmark
// ends (see BenchmarkUnpackDebian), or under $KILN_BENCH_DIR, removed after each run. Point
// it at a tmpfs to measure the work above the disk's file system. For a disk without other
// users, run the benchmark with TMPDIR on a fresh file system (a loop-mounted ext4 image).
type outDirs struct {
	dir    string
	remove bool
	n      int
}

func newOutDirs(b *testing.B, work string) *outDirs {
	if d := os.Getenv("KILN_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "kiln-bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return &outDirs{dir: dir, remove: true}
	}
	return &outDirs{dir: work}
}

func (o *outDirs) next() string {
	o.n++
	return filepath.Join(o.dir, fmt.Sprint("out", o.n))
}

// done removes or keeps a tree once it is timed, and writes what the run left dirty to disk,
// so that the next run is not throttled by this one's writeback.
func (o *outDirs) done(b *testing.B, dst string) {
	if o.remove {
		if err := os.RemoveAll(dst); err != nil {
			b.Fatal(err)
		}
	}
	f, err := os.Open(o.dir)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		b.Fatal(err)
	}
}

// unpackWays: kiln/FORM/workers=N (decompression and Extract with N writers, FORM being how
// a layer cache could keep the layer: gzip, zstd or plain tar), gnutar/FORM (GNU tar -x of
// the same file), floor/writers=N (the same tree created from memory by N goroutines, with
// no archive: createTree).
func unpackWays(b *testing.B, l *benchLayer) []unpackWay {
	forms := []string{"gzip", "zstd", "plain"}
	var ways []unpackWay
	for _, form := range forms {
		for _, workers := range []int{1, 2, 4} {
			ways = append(ways, unpackWay{name: fmt.Sprintf("kiln/%s/workers=%d", form, workers),
				run: func(dst string) error { return unpackFile(l.path(form), dst, workers) }})
		}
	}
	for _, form := range forms {
		args := map[string][]string{"gzip": {"-z"}, "zstd": {"--zstd"}}[form]
		w := unpackWay{name: "gnutar/" + form, run: func(dst string) error {
			if err := os.Mkdir(dst, 0o755); err != nil {
				return err
			}
			cmd := exec.Command("tar", append(args, "--numeric-owner", "-xf", l.path(form), "-C", dst)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("%s: %v\n%s", cmd, err, out)
			}
			return nil
		}}
		for _, tool := range map[string][]string{"gzip": {"tar", "gzip"}, "zstd": {"tar", "zstd"}, "plain": {"tar"}}[form] {
			if _, err := exec.LookPath(tool); err != nil {
				w.missing = tool + " is not installed"
			}
		}
		ways = append(ways, w)
	}
	entries := readEntries(b, l.plain)
	for _, writers := range []int{1, 2, 4} {
		ways = append(ways, unpackWay{name: fmt.Sprintf("floor/writers=%d", writers),
			run: func(dst string) error { return createTree(dst, entries, writers) }})
	}
	return ways
}

// unpackFile extracts a layer file in any form into dst, as the builder does.
func unpackFile(src, dst string, workers int) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	r, done, err := decompress.Reader(f)
	if err != nil {
		return err
	}
	defer done()
	return Extract(context.Background(), dst, r, WithExtractWorkers(workers))
}

// BenchmarkDecompressDebian reads the Debian base through internal/decompress in each form a
// layer cache could keep it, creating no file: the reading side of BenchmarkUnpackDebian.
func BenchmarkDecompressDebian(b *testing.B) {
	l := loadBenchLayer(b, b.TempDir())
	for _, form := range []string{"gzip", "zstd", "plain"} {
		b.Run(form, func(b *testing.B) {
			b.SetBytes(l.size)
			for i := 0; i < b.N; i++ {
				f, err := os.Open(l.path(form))
				if err != nil {
					b.Fatal(err)
				}
				r, done, err := decompress.Reader(f)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, r); err != nil {
					b.Fatal(err)
				}
				done()
				f.Close()
			}
			fi, err := os.Stat(l.path(form))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(fi.Size())/float64(l.size), "ratio")
		})
	}
}

// BenchmarkUnpackAfterDeletion is a pod's rebuild on a node that just deleted the previous
// pod's root: each round unpacks the layer into a scratch tree and deletes it, then times one
// way of unpacking it into a fresh root, then deletes that too. On ext4 without a journal the
// freed inodes are skipped, slowly, for a minute (see internal/dirspread); the spread ways set
// the root's top-directory flag first, as the builder does. Metrics as in
// BenchmarkUnpackDebianRounds: -bench UnpackAfterDeletion -benchtime 3x.
func BenchmarkUnpackAfterDeletion(b *testing.B) {
	requireRoot(b)
	work := b.TempDir()
	l := loadBenchLayer(b, work)
	b.Logf("layer: %s, %d MB as plain tar", l.what, l.size>>20)
	ways := afterDeletionWays(l)
	took := make([][]time.Duration, len(ways))
	n := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := range ways {
			k = (k + i) % len(ways)
			n++
			prev := filepath.Join(work, fmt.Sprint("prev", n))
			if err := unpackFile(l.plain, prev, 4); err != nil {
				b.Fatal(err)
			}
			if err := os.RemoveAll(prev); err != nil {
				b.Fatal(err)
			}
			dst := filepath.Join(work, fmt.Sprint("out", n))
			if err := os.Mkdir(dst, 0o755); err != nil {
				b.Fatal(err)
			}
			if ways[k].spread {
				dirspread.Children(dst)
			}
			start := time.Now()
			if err := ways[k].run(dst); err != nil {
				b.Fatal(err)
			}
			took[k] = append(took[k], time.Since(start))
			if err := os.RemoveAll(dst); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	for k, w := range ways {
		reportRounds(b, w.name, took[k])
	}
}

// deletionWay is one way of BenchmarkUnpackAfterDeletion: spread sets the root's
// top-directory flag before run unpacks into it.
type deletionWay struct {
	name   string
	spread bool
	run    func(dst string) error
}

func afterDeletionWays(l *benchLayer) []deletionWay {
	var ways []deletionWay
	for _, form := range []string{"gzip", "zstd", "plain"} {
		for _, spread := range []bool{false, true} {
			name := "kiln/" + form + "/workers=4"
			if spread {
				name += "/spread"
			}
			ways = append(ways, deletionWay{name: name, spread: spread, run: func(dst string) error { return unpackFile(l.path(form), dst, 4) }})
		}
	}
	if _, err := exec.LookPath("tar"); err == nil {
		ways = append(ways, deletionWay{name: "gnutar/plain", run: func(dst string) error {
			out, err := exec.Command("tar", "--numeric-owner", "-xf", l.plain, "-C", dst).CombinedOutput()
			if err != nil {
				return fmt.Errorf("tar: %v\n%s", err, out)
			}
			return nil
		}})
	}
	return ways
}
