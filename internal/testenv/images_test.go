package testenv

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestPushBusybox(t *testing.T) {
	r := StartRegistry(t, RegistryOptions{Auth: true})
	ref := PushBusybox(t, r, "busybox:latest")
	if ref != r.Addr+"/busybox:latest" {
		t.Errorf("ref = %q", ref)
	}
	files := ExportImage(t, r, ref)
	sh := files["bin/sh"]
	if sh.Type != tar.TypeSymlink || sh.Linkname != "busybox" {
		t.Errorf("bin/sh = %+v, want a symlink to busybox", sh)
	}
	bb := files["bin/busybox"]
	host, _ := os.ReadFile(busyboxBinary)
	if bb.Type != tar.TypeReg || bb.Size != int64(len(host)) || bb.Mode != 0o755 {
		t.Errorf("bin/busybox = type %c size %d mode %o, want the host's %d-byte binary, 0755", bb.Type, bb.Size, bb.Mode, len(host))
	}
	if tmp := files["tmp"]; tmp.Type != tar.TypeDir || tmp.Mode != 0o1777 {
		t.Errorf("tmp mode = %o, want 1777", tmp.Mode)
	}
	for _, d := range []string{"root", "home", "etc"} {
		if files[d].Type != tar.TypeDir {
			t.Errorf("%s missing or not a directory", d)
		}
	}
	if got := string(files["etc/passwd"].Content); got != "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n" {
		t.Errorf("etc/passwd = %q", got)
	}
	if got := string(files["etc/group"].Content); got != "root:x:0:\nnobody:x:65534:\n" {
		t.Errorf("etc/group = %q", got)
	}
	cf := Config(t, r, ref)
	if !slices.Equal(cf.Config.Cmd, []string{"/bin/sh"}) || !slices.Equal(cf.Config.Env, []string{DefaultPath}) {
		t.Errorf("config Cmd %q Env %q", cf.Config.Cmd, cf.Config.Env)
	}
	if cf.OS != "linux" || len(cf.History) != 1 || len(cf.RootFS.DiffIDs) != 1 {
		t.Errorf("config os %q history %d diffids %d", cf.OS, len(cf.History), len(cf.RootFS.DiffIDs))
	}

	// Reproducible: the same bytes in another registry give the same digest.
	r2 := StartRegistry(t, RegistryOptions{})
	ref2 := PushBusybox(t, r2, "bb:again")
	d1 := SkopeoInspect(t, r, ref)["Digest"]
	d2 := SkopeoInspect(t, r2, ref2)["Digest"]
	if d1 == nil || d1 != d2 {
		t.Errorf("busybox digests differ between pushes: %v vs %v", d1, d2)
	}
	if env := SkopeoInspectConfig(t, r, ref)["config"].(map[string]any)["Env"]; len(env.([]any)) != 1 {
		t.Errorf("skopeo --config Env = %v", env)
	}

	// umoci reads the same image through an OCI layout.
	layout := SkopeoCopyToOCI(t, r, ref, "bb")
	rootfs := UmociUnpack(t, layout, "bb")
	if link, err := os.Readlink(filepath.Join(rootfs, "bin/sh")); err != nil || link != "busybox" {
		t.Errorf("umoci rootfs bin/sh -> %q (%v)", link, err)
	}
	if fi, err := os.Stat(filepath.Join(rootfs, "tmp")); err != nil || fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Errorf("umoci rootfs /tmp mode %v (%v)", fi.Mode(), err)
	}
}

func TestPushImageFromDirKeepsMetadata(t *testing.T) {
	requireRoot(t, "chown in the test tree")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "app/run"), []byte("#!/bin/sh\n"), 0o755)
	// chown clears setuid: set ownership first.
	must(t, os.Chown(filepath.Join(dir, "app/run"), 1000, 2000))
	must(t, os.Chmod(filepath.Join(dir, "app/run"), 0o755|os.ModeSetuid))
	must(t, os.Link(filepath.Join(dir, "app/run"), filepath.Join(dir, "app/run2")))
	must(t, os.Symlink("../app/run", filepath.Join(dir, "app/link")))
	must(t, os.Mkdir(filepath.Join(dir, "empty"), 0o700))

	r := StartRegistry(t, RegistryOptions{TLS: true})
	ref := PushImageFromDir(t, r, "meta:1", dir, v1.Config{Entrypoint: []string{"/app/run"}, User: "1000"})
	files := ExportImage(t, r, ref)
	run := files["app/run"]
	if run.Mode != 0o4755 || run.UID != 1000 || run.GID != 2000 || string(run.Content) != "#!/bin/sh\n" {
		t.Errorf("app/run = mode %o uid %d gid %d content %q", run.Mode, run.UID, run.GID, run.Content)
	}
	if l := files["app/run2"]; l.Type != tar.TypeLink || l.Linkname != "app/run" {
		t.Errorf("app/run2 = %+v, want a hardlink to app/run", l)
	}
	if l := files["app/link"]; l.Type != tar.TypeSymlink || l.Linkname != "../app/run" {
		t.Errorf("app/link = %+v", l)
	}
	if e := files["empty"]; e.Type != tar.TypeDir || e.Mode != 0o700 {
		t.Errorf("empty = %+v", e)
	}
	if cf := Config(t, r, ref); cf.Config.User != "1000" || !slices.Equal(cf.Config.Entrypoint, []string{"/app/run"}) {
		t.Errorf("config = %+v", cf.Config)
	}
}

func TestExportImageAppliesWhiteouts(t *testing.T) {
	r := StartRegistry(t, RegistryOptions{})
	lower := tarLayer(t, map[string]string{"keep.txt": "k", "gone.txt": "g", "dir/": "", "dir/old.txt": "o"})
	upper := tarLayer(t, map[string]string{".wh.gone.txt": "", "dir/.wh..wh..opq": "", "dir/new.txt": "n"})
	img, err := mutate.AppendLayers(empty.Image, lower, upper)
	must(t, err)
	ref := r.Ref("wh:1")
	must(t, pushImage(r, ref, img))
	files := ExportImage(t, r, ref)
	var got []string
	for p := range files {
		got = append(got, p)
	}
	slices.Sort(got)
	if want := []string{"dir", "dir/new.txt", "keep.txt"}; !slices.Equal(got, want) {
		t.Errorf("exported paths %v, want %v", got, want)
	}
}

// tarLayer makes a layer of files (names ending in "/" are directories).
func tarLayer(t *testing.T, files map[string]string) v1.Layer {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		hdr := &tar.Header{Name: n, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(files[n]))}
		if n[len(n)-1] == '/' {
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
		}
		must(t, tw.WriteHeader(hdr))
		_, err := tw.Write([]byte(files[n]))
		must(t, err)
	}
	must(t, tw.Close())
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	})
	must(t, err)
	return l
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
