package sandbox_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// tarEntry is one entry of a test layer; Link makes a symlink, a trailing "/" a directory.
type tarEntry struct {
	Name, Body, Link string
	Mode             int64
}

// tarLayer makes a gzipped layer of entries, all owned by root.
func tarLayer(entries ...tarEntry) (v1.Layer, error) {
	data, err := gzipTar(entries)
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
}

// gzipTar writes entries as a gzipped tar, compressed once (a layer made from a plain tar
// would be compressed again at every read, slow in a race-enabled test binary).
func gzipTar(entries []tarEntry) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	mtime := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Mode: e.Mode, ModTime: mtime, Typeflag: tar.TypeReg, Size: int64(len(e.Body))}
		switch {
		case strings.HasSuffix(e.Name, "/"):
			h.Typeflag, h.Size = tar.TypeDir, 0
		case e.Link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.Link, 0
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write([]byte(e.Body)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// busyboxTar memoizes busyboxLayer's gzipped tar: the tests of this package share it.
var busyboxTar struct {
	once sync.Once
	data []byte
	err  error
}

// busyboxLayer is a userland made of the host's static busybox (Debian's busybox-static):
// /bin/busybox with a link per applet, /etc/passwd and /etc/group with root and a user
// "builder" (1000:1000, also in group "tools", 2000), and /tmp.
func busyboxLayer() (v1.Layer, error) {
	busyboxTar.once.Do(func() { busyboxTar.data, busyboxTar.err = busyboxGzip() })
	if busyboxTar.err != nil {
		return nil, busyboxTar.err
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(busyboxTar.data)), nil
	})
}

// busyboxGzip makes busyboxLayer's gzipped tar.
func busyboxGzip() ([]byte, error) {
	bin, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return nil, err
	}
	list, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		return nil, err
	}
	entries := []tarEntry{
		{Name: "bin/"}, {Name: "etc/"}, {Name: "tmp/", Mode: 0o1777}, {Name: "home/"},
		{Name: "bin/busybox", Body: string(bin), Mode: 0o755},
		{Name: "etc/passwd", Body: "root:x:0:0:root:/root:/bin/sh\nbuilder:x:1000:1000::/home/builder:/bin/sh\n"},
		{Name: "etc/group", Body: "root:x:0:\nbuilder:x:1000:\ntools:x:2000:builder\n"},
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet != "busybox" {
			entries = append(entries, tarEntry{Name: "bin/" + applet, Link: "busybox"})
		}
	}
	return gzipTar(entries)
}

// busyboxImage is an image of busyboxLayer, then the extra layers, with config cfg.
func busyboxImage(cfg v1.Config, extra ...v1.Layer) (v1.Image, error) {
	base, err := busyboxLayer()
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, append([]v1.Layer{base}, extra...)...)
	if err != nil {
		return nil, err
	}
	return mutate.Config(img, cfg)
}
