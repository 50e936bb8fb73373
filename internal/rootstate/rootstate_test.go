package rootstate

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kilnbuild/kiln/snapshot"
	"golang.org/x/sys/unix"
)

type entry struct {
	name, body, link string
	typ              byte
	mode             int64
	uid              int
	xattr            string
}

func layerTar(t *testing.T, entries ...entry) ([]byte, v1.Hash) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(1700000000, 0)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.uid, ModTime: mtime,
			Linkname: e.link, Size: int64(len(e.body)), Format: tar.FormatPAX}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if e.xattr != "" {
			hdr.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": e.xattr}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256(buf.Bytes()))}
}

func dir(name string, mode int64) entry { return entry{name: name, typ: tar.TypeDir, mode: mode} }
func file(name, body string) entry {
	return entry{name: name, typ: tar.TypeReg, mode: 0o644, body: body}
}

// testLayers: a base, then a layer that deletes, replaces a directory wholesale, adds a
// hardlink pair, a setuid file with a capability, a symlink and a fifo, then one that turns a
// file into a directory and a directory into a file.
func testLayers(t *testing.T) ([][]byte, []v1.Hash) {
	var tars [][]byte
	var ids []v1.Hash
	add := func(es ...entry) {
		b, id := layerTar(t, es...)
		tars, ids = append(tars, b), append(ids, id)
	}
	add(dir("etc/", 0o755), file("etc/passwd", "root\n"), file("etc/gone", "x"), dir("opt/", 0o755),
		dir("opt/old/", 0o700), file("opt/old/a", "a"), file("opt/keep", "k"), dir("var/", 0o755), file("var/f", "file"),
		dir("usr/", 0o755), dir("usr/d/", 0o755), file("usr/d/x", "x"))
	add(dir("etc/", 0o750), entry{name: "etc/.wh.gone", typ: tar.TypeReg}, dir("opt/", 0o755),
		dir("opt/old/", 0o755), entry{name: "opt/old/.wh..wh..opq", typ: tar.TypeReg}, file("opt/old/b", "b"),
		dir("bin/", 0o755), entry{name: "bin/su", typ: tar.TypeReg, mode: 0o4755, body: "su", xattr: "\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"},
		entry{name: "bin/su2", typ: tar.TypeLink, link: "bin/su"}, entry{name: "bin/sh", typ: tar.TypeSymlink, link: "/bin/su"},
		entry{name: "bin/fifo", typ: tar.TypeFifo, mode: 0o600, uid: 7})
	add(dir("var/", 0o755), entry{name: "var/.wh.f", typ: tar.TypeReg}, dir("var/f/", 0o711), file("var/f/in", "in"),
		dir("usr/", 0o755), entry{name: "usr/.wh.d", typ: tar.TypeReg}, file("usr/d", "now a file"))
	return tars, ids
}

func requireRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: chown, mknod and trusted.* xattrs")
	}
}

// TestStateMatchesExtract: the chain merged (copy path) or mounted (overlay) from kept layers
// is the tree snapshot.Extract makes from the same layers, file for file.
func TestStateMatchesExtract(t *testing.T) {
	requireRoot(t)
	tars, ids := testLayers(t)
	want := t.TempDir()
	for _, b := range tars {
		if err := snapshot.Extract(context.Background(), want, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, b := range tars {
		if err := s.Add(ids[i], bytes.NewReader(b)); err != nil {
			t.Fatalf("Add layer %d: %v", i, err)
		}
		if !s.Has(ids[i]) {
			t.Fatalf("layer %d not kept", i)
		}
	}
	merged := t.TempDir()
	if err := s.Merge(merged, ids); err != nil {
		t.Fatal(err)
	}
	compareTrees(t, "merge", want, merged)

	mnt := t.TempDir()
	m, err := s.Mount(mnt, ids)
	if err != nil {
		t.Skipf("overlay mount not possible here: %v", err)
	}
	compareTrees(t, "overlay", want, mnt)
	// A write through the mount leaves the kept layer alone.
	if err := os.WriteFile(filepath.Join(mnt, "etc/passwd"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(s.Dir(ids[0]), "etc/passwd")); string(b) != "root\n" {
		t.Errorf("kept layer changed by a write through the overlay: %q", b)
	}
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(mnt); len(entries) != 0 {
		t.Errorf("root not empty after Unmount: %v", entries)
	}
}

// describe is what must be equal between two trees, per path.
func describe(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode=%o uid=%d gid=%d", st.Mode, st.Uid, st.Gid)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, _ := os.ReadFile(p)
			desc += fmt.Sprintf(" nlink=%d body=%q mtime=%d", st.Nlink, b, st.Mtim.Sec)
		case unix.S_IFLNK:
			l, _ := os.Readlink(p)
			desc += " link=" + l
		}
		buf := make([]byte, 64)
		if n, err := unix.Lgetxattr(p, "security.capability", buf); err == nil {
			desc += fmt.Sprintf(" cap=%x", buf[:n])
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func compareTrees(t *testing.T, how, want, got string) {
	t.Helper()
	w, g := describe(t, want), describe(t, got)
	for p, d := range w {
		if g[p] != d {
			t.Errorf("%s: %s: got %q, want %q", how, p, g[p], d)
		}
	}
	for p := range g {
		if _, ok := w[p]; !ok {
			t.Errorf("%s: %s should not exist", how, p)
		}
	}
}

// TestStoreRejectsBadLayers: a layer whose content is not its diffID, or that names a parent it
// lacks, is not kept; a directory without its marker (damaged, or partial) is not used and is
// pruned; pruning bounds the size, least recently used first, and waits for users.
func TestStoreRejectsBadLayers(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	tars, ids := testLayers(t)
	if err := s.Add(ids[1], bytes.NewReader(tars[0])); err == nil || !strings.Contains(err.Error(), "not the diffID") {
		t.Errorf("Add of the wrong content: %v", err)
	}
	orphan, oid := layerTar(t, file("lonely/file", "x"))
	if err := s.Add(oid, bytes.NewReader(orphan)); !errors.Is(err, ErrNotSelfContained) {
		t.Errorf("Add of a layer without its parents: %v", err)
	}
	if err := s.Rejected(oid); !errors.Is(err, ErrNotSelfContained) {
		t.Errorf("the refused layer is not remembered: %v", err)
	}
	for i := range tars {
		if err := s.Add(ids[i], bytes.NewReader(tars[i])); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(s.layerDir(ids[1]), marker)); err != nil {
		t.Fatal(err)
	}
	if s.Has(ids[1]) {
		t.Error("a layer without its marker is used")
	}
	if res, err := Prune(dir, 0); err != nil || !res.Busy {
		t.Errorf("Prune while the store is open: %+v %v", res, err)
	}
	s.Touch(ids[2])
	s.Close()
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(s.layerDir(ids[0]), marker), old, old)
	b, _ := os.ReadFile(filepath.Join(s.layerDir(ids[2]), marker))
	var id string
	var size int64
	fmt.Sscan(string(b), &id, &size)
	res, err := Prune(dir, size) // room for the most recently used layer only
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.layerDir(ids[1])); !os.IsNotExist(err) {
		t.Errorf("the damaged layer was not pruned: %v", err)
	}
	if _, err := os.Stat(s.layerDir(ids[0])); !os.IsNotExist(err) {
		t.Errorf("the least recently used layer was kept: %+v", res)
	}
	if res.Removed != 1 || res.Kept != 1 {
		t.Errorf("Prune: %+v", res)
	}
}

// TestUnmountStale: an overlay a killed build left at a root is found and unmounted; a mount
// that is not a store's is left alone.
func TestUnmountStale(t *testing.T) {
	requireRoot(t)
	tars, ids := testLayers(t)
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Add(ids[0], bytes.NewReader(tars[0])); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if _, err := s.Mount(root, ids[:1]); err != nil {
		t.Skipf("overlay mount not possible here: %v", err)
	}
	other := t.TempDir()
	if err := unix.Mount("tmpfs", other, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(other, unix.MNT_DETACH)
	if !staleAt(root) || staleAt(other) {
		t.Fatalf("staleAt: root %v, tmpfs %v", staleAt(root), staleAt(other))
	}
	if err := UnmountStale(root); err != nil {
		t.Fatal(err)
	}
	if err := UnmountStale(other); err != nil {
		t.Fatal(err)
	}
	if staleAt(root) {
		t.Error("the overlay is still mounted")
	}
	if _, err := os.Stat(filepath.Join(root, "etc/passwd")); !os.IsNotExist(err) {
		t.Errorf("root still shows the layer: %v", err)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if !strings.Contains(string(mounts), " "+other+" ") {
		t.Error("UnmountStale removed a tmpfs that is no store's")
	}
}
