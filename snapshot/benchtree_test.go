package snapshot

import (
	"archive/tar"
	"bytes"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/decompress"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// debianTarGz is where internal/testenv caches its debootstrapped Debian bookworm rootfs
// (integration tests and `go test ./internal/testenv` make it); KILN_BENCH_LAYER overrides it.
const debianTarGz = "/var/tmp/kiln-test/debian-bookworm.tar.gz"

// benchLayer is one layer in the three forms a layer cache could keep, written to files.
type benchLayer struct {
	plain, gzip, zstd string // paths
	size              int64  // of the plain tar
	what              string // where the tree came from
}

func (l *benchLayer) path(form string) string {
	return map[string]string{"plain": l.plain, "gzip": l.gzip, "zstd": l.zstd}[form]
}

// loadBenchLayer returns the Debian base rootfs as a layer in every form (gzip as testenv made
// it, zstd at klauspost's default level), or, when there is none, a generated tree of
// Debian's shape.
func loadBenchLayer(b *testing.B, dir string) *benchLayer {
	b.Helper()
	src := os.Getenv("KILN_BENCH_LAYER")
	if src == "" {
		src = debianTarGz
	}
	l := &benchLayer{plain: filepath.Join(dir, "layer.tar"), gzip: filepath.Join(dir, "layer.tar.gz"),
		zstd: filepath.Join(dir, "layer.tar.zst"), what: src}
	if f, err := os.Open(src); err == nil {
		defer f.Close()
		r, done, err := decompress.Reader(f)
		if err != nil {
			b.Fatal(err)
		}
		writeFile(b, l.plain, r)
		done()
	} else {
		l.what = "a generated tree of Debian's shape (" + src + " is missing)"
		var buf bytes.Buffer
		debianLikeTar(b, &buf, 780)
		writeFile(b, l.plain, &buf)
	}
	fi, err := os.Stat(l.plain)
	if err != nil {
		b.Fatal(err)
	}
	l.size = fi.Size()
	compressFile(b, l.plain, l.gzip, func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) })
	compressFile(b, l.plain, l.zstd, func(w io.Writer) io.WriteCloser {
		zw, err := zstd.NewWriter(w)
		if err != nil {
			b.Fatal(err)
		}
		return zw
	})
	return l
}

func writeFile(b *testing.B, p string, r io.Reader) {
	b.Helper()
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(f, r); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

func compressFile(b *testing.B, src, dst string, newWriter func(io.Writer) io.WriteCloser) {
	b.Helper()
	in, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		b.Fatal(err)
	}
	w := newWriter(out)
	if _, err := io.Copy(w, in); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
}

// debianLikeTar writes a tar of Debian minbase's shape: with 780 directories, 5,200 files
// (most of a few KiB, a few of MiBs, 160 MB in all, half compressible) and 650 symlinks.
func debianLikeTar(b testing.TB, w io.Writer, ndirs int) {
	rnd := rand.New(rand.NewSource(1))
	tw := tar.NewWriter(w)
	mtime := time.Unix(1700000000, 0)
	add := func(h *tar.Header, data []byte) {
		h.ModTime, h.Format = mtime, tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			b.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			b.Fatal(err)
		}
	}
	text := bytes.Repeat([]byte("Debian GNU/Linux package documentation line\n"), 1<<16)
	var dirs []string
	for i := 0; i < ndirs; i++ {
		d := fmt.Sprintf("usr/d%02d", i/30)
		if i%30 != 0 {
			d = fmt.Sprintf("%s/s%02d", d, i%30)
		}
		dirs = append(dirs, d)
	}
	add(&tar.Header{Name: "usr/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	for i, d := range dirs {
		add(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
		for j := 0; j < 7; j++ {
			size := 200 + rnd.Intn(4000)
			switch r := rnd.Intn(100); {
			case r < 4:
				size = 256<<10 + rnd.Intn(3<<20)
			case r < 30:
				size = 8<<10 + rnd.Intn(56<<10)
			}
			data := make([]byte, size)
			rnd.Read(data[:size/2])
			copy(data[size/2:], text)
			add(&tar.Header{Name: fmt.Sprintf("%s/f%d", d, j), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(size)}, data)
			if j < 1 || (j == 1 && i%6 == 0) {
				add(&tar.Header{Name: fmt.Sprintf("%s/l%d", d, j), Typeflag: tar.TypeSymlink, Linkname: fmt.Sprintf("f%d", j)}, nil)
			}
		}
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
}

// memEntry is a layer entry held in memory, for the floor benchmark.
type memEntry struct {
	hdr  *tar.Header
	data []byte
	path string // image path without the leading slash
}

// readEntries reads a plain tar into memory.
func readEntries(b *testing.B, p string) []memEntry {
	f, err := os.Open(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var out []memEntry
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			b.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			b.Fatal(err)
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		if name != "" {
			out = append(out, memEntry{hdr: hdr, data: data, path: name})
		}
	}
}

// createTree is the file system's floor for a layer: the same directories, files and links
// created from memory by `writers` goroutines with the syscalls an extractor must make (a
// level of directories at a time, then everything else, then directory modes and times), with
// no archive to read and no checks.
func createTree(root string, entries []memEntry, writers int) error {
	var levels [][]memEntry
	var rest []memEntry
	for _, e := range entries {
		if e.hdr.Typeflag == tar.TypeDir {
			depth := strings.Count(e.path, "/")
			for len(levels) <= depth {
				levels = append(levels, nil)
			}
			levels[depth] = append(levels[depth], e)
		} else {
			rest = append(rest, e)
		}
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	for _, level := range levels {
		if err := inParallel(level, writers, func(e memEntry) error {
			return unix.Mkdir(root+"/"+e.path, 0o700)
		}); err != nil {
			return err
		}
	}
	if err := inParallel(rest, writers, func(e memEntry) error { return createEntry(root+"/"+e.path, e) }); err != nil {
		return err
	}
	dirs := make([]memEntry, 0, len(entries)-len(rest))
	for _, level := range levels {
		dirs = append(dirs, level...)
	}
	sort.Slice(dirs, func(i, j int) bool { return dirs[i].path > dirs[j].path })
	return inParallel(dirs, writers, func(e memEntry) error {
		p := root + "/" + e.path
		if err := unix.Lchown(p, e.hdr.Uid, e.hdr.Gid); err != nil {
			return err
		}
		if err := unix.Chmod(p, uint32(e.hdr.Mode&0o7777)); err != nil {
			return err
		}
		return setTimes(p, e.hdr.ModTime, e.hdr.ModTime)
	})
}

func createEntry(p string, e memEntry) error {
	switch e.hdr.Typeflag {
	case tar.TypeSymlink:
		if err := unix.Symlink(e.hdr.Linkname, p); err != nil {
			return err
		}
		return unix.Lchown(p, e.hdr.Uid, e.hdr.Gid)
	case tar.TypeReg:
		fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if _, err := unix.Write(fd, e.data); err != nil {
			return err
		}
		if err := unix.Fchown(fd, e.hdr.Uid, e.hdr.Gid); err != nil {
			return err
		}
		if err := unix.Fchmod(fd, uint32(e.hdr.Mode&0o7777)); err != nil {
			return err
		}
		return futimens(fd, p, e.hdr.ModTime, e.hdr.ModTime)
	}
	return nil // hardlinks and devices: a handful in a base image
}

// inParallel calls f on every entry from n goroutines, the entries of one directory on one
// goroutine (as Extract's writers do: creations in a directory take its lock).
func inParallel(entries []memEntry, n int, f func(memEntry) error) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, e := range entries {
				h := fnv.New32a()
				h.Write([]byte(path.Dir(e.path)))
				if int(h.Sum32()%uint32(n)) != w {
					continue
				}
				if err := f(e); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
