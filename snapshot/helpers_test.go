package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fsOps builds trees in a test root by image path.
type fsOps struct {
	t    testing.TB
	root string
}

func (f fsOps) host(p string) string { return filepath.Join(f.root, p) }

func (f fsOps) write(p, content string, mode os.FileMode) {
	f.t.Helper()
	h := f.host(p)
	if err := os.MkdirAll(filepath.Dir(h), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(h, []byte(content), mode); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Chmod(h, mode); err != nil {
		f.t.Fatal(err)
	}
}

func (f fsOps) mkdir(p string, mode os.FileMode) {
	f.t.Helper()
	if err := os.MkdirAll(f.host(p), mode); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Chmod(f.host(p), mode); err != nil {
		f.t.Fatal(err)
	}
}

func (f fsOps) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

// tarEntry is what a test checks of one layer entry.
type tarEntry struct {
	hdr     *tar.Header
	content string
}

func (e tarEntry) String() string {
	h := e.hdr
	s := fmt.Sprintf("%s %c %04o %d:%d", h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid)
	switch h.Typeflag {
	case tar.TypeSymlink, tar.TypeLink:
		s += " -> " + h.Linkname
	case tar.TypeReg:
		s += fmt.Sprintf(" %d %q", h.Size, e.content)
	case tar.TypeChar, tar.TypeBlock:
		s += fmt.Sprintf(" %d,%d", h.Devmajor, h.Devminor)
	}
	var xs []string
	for k, v := range h.PAXRecords {
		if name, ok := strings.CutPrefix(k, paxXattrPrefix); ok && !strings.HasPrefix(name, "security.selinux") {
			xs = append(xs, name+"="+v)
		}
	}
	sort.Strings(xs)
	if len(xs) > 0 {
		s += " xattr[" + strings.Join(xs, ",") + "]"
	}
	return s
}

// readTar lists the entries of an uncompressed tar.
func readTar(t testing.TB, r io.Reader) []tarEntry {
	t.Helper()
	tr := tar.NewReader(r)
	var out []tarEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{hdr: h, content: string(b)})
	}
}

// layerEntries reads a layer back through its Uncompressed stream.
func layerEntries(t testing.TB, l *Layer) []string {
	t.Helper()
	if l == nil {
		t.Fatal("expected a layer, got nil")
	}
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out []string
	for _, e := range readTar(t, rc) {
		out = append(out, e.String())
	}
	return out
}

func assertLines(t testing.TB, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("layer entries differ\n got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// listing describes every path under root (except root itself) with all metadata that a
// layer must carry, hardlinks as groups.
func listing(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	firstOfInode := map[uint64]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, root)
		if rel == "" {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		line := fmt.Sprintf("%s mode=%o uid=%d gid=%d mtime=%d", rel, st.Mode, st.Uid, st.Gid, st.Mtim.Nano())
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" sha=%x", sha256.Sum256(b))
			if st.Nlink > 1 {
				if first, ok := firstOfInode[st.Ino]; ok {
					line += " link=" + first
				} else {
					firstOfInode[st.Ino] = rel
				}
			}
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case unix.S_IFCHR, unix.S_IFBLK:
			line += fmt.Sprintf(" rdev=%d", st.Rdev)
		}
		if xs, err := readXattrs(p); err == nil {
			var names []string
			for k, v := range xs {
				if !strings.HasPrefix(k, "security.selinux") {
					names = append(names, k+"="+v)
				}
			}
			sort.Strings(names)
			line += " xattr=" + strings.Join(names, ",")
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// buildTar writes a tar from headers (content taken from the map by name).
func buildTar(t testing.TB, hdrs []*tar.Header, content map[string]string) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		c := ""
		if h.Typeflag == tar.TypeReg {
			c = content[h.Name]
			h.Size = int64(len(c))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// extractLayer applies a Layer's uncompressed stream to root.
func extractLayer(t testing.TB, root string, l *Layer, opts ...Option) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := Extract(context.Background(), root, rc, opts...); err != nil {
		t.Fatal(err)
	}
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown, mknod)")
	}
}
