package testenv

import (
	"archive/tar"
	"errors"
	"io"
	"path"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// maxContent is the size below which ExportImage keeps a file's bytes.
const maxContent = 1 << 20

// FileEntry is one file of an exported image filesystem.
type FileEntry struct {
	// Path is relative to the image root, without "./" or a trailing slash.
	Path string
	// Type is the tar type flag (tar.TypeReg, tar.TypeDir, tar.TypeSymlink ...).
	Type byte
	// Mode holds permission bits plus setuid/setgid/sticky, as tar stores them.
	Mode     int64
	UID, GID int
	Size     int64
	// Linkname is the target of a symlink or hardlink.
	Linkname string
	// Content holds the bytes of regular files smaller than 1 MiB.
	Content []byte
}

// ExportImage pulls ref from r and returns its flattened filesystem with
// whiteouts applied (as `crane export` does), keyed by Path.
func ExportImage(t testing.TB, r *Registry, ref string) map[string]FileEntry {
	t.Helper()
	img := pullImage(t, r, ref)
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string]FileEntry{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("testenv: export %s: %v", ref, err)
		}
		p := cleanTarPath(hdr.Name)
		if p == "" {
			continue
		}
		e := FileEntry{
			Path: p, Type: hdr.Typeflag, Mode: hdr.Mode, UID: hdr.Uid, GID: hdr.Gid,
			Size: hdr.Size, Linkname: hdr.Linkname,
		}
		if hdr.Typeflag == tar.TypeReg && hdr.Size < maxContent {
			if e.Content, err = io.ReadAll(tr); err != nil {
				t.Fatalf("testenv: export %s: read %s: %v", ref, p, err)
			}
		}
		files[p] = e
	}
	return files
}

// cleanTarPath turns "./a/b/" or "/a/b" into "a/b" ("" for the root).
func cleanTarPath(p string) string {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	return p
}

// Config pulls ref from r and returns its config file.
func Config(t testing.TB, r *Registry, ref string) *v1.ConfigFile {
	t.Helper()
	cf, err := pullImage(t, r, ref).ConfigFile()
	if err != nil {
		t.Fatalf("testenv: config of %s: %v", ref, err)
	}
	return cf
}

// pullImage fetches ref from r (lazily: layers download when read).
func pullImage(t testing.TB, r *Registry, ref string) v1.Image {
	t.Helper()
	n, err := name.ParseReference(ref, r.nameOptions()...)
	if err != nil {
		t.Fatalf("testenv: parse %q: %v", ref, err)
	}
	img, err := remote.Image(n, r.RemoteOptions()...)
	if err != nil {
		t.Fatalf("testenv: pull %s: %v", ref, err)
	}
	return img
}
