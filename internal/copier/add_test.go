package copier

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

var archiveTime = time.Date(2019, 5, 6, 7, 8, 9, 0, time.UTC)

// sampleTar is an archive with owners, a symlink, a hard link and a file
// whose parents have no entries of their own.
func sampleTar(t *testing.T) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdrs := []struct {
		h    tar.Header
		data string
	}{
		{tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o700}, ""},
		{tar.Header{Name: "top/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 1, Gid: 2}, ""},
		{tar.Header{Name: "top/f", Typeflag: tar.TypeReg, Mode: 0o640, Uid: 3, Gid: 4}, "F"},
		{tar.Header{Name: "top/l", Typeflag: tar.TypeSymlink, Linkname: "f"}, ""},
		{tar.Header{Name: "top/h", Typeflag: tar.TypeLink, Linkname: "top/f"}, ""},
		{tar.Header{Name: "implicit/p/q", Typeflag: tar.TypeReg, Mode: 0o755}, "Q"},
	}
	for _, e := range hdrs {
		h := e.h
		h.ModTime = archiveTime
		h.Size = int64(len(e.data))
		must(t, tw.WriteHeader(&h))
		_, err := tw.Write([]byte(e.data))
		must(t, err)
	}
	must(t, tw.Close())
	return buf.Bytes()
}

func gzipBytes(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(b)
	must(t, err)
	must(t, zw.Close())
	return buf.Bytes()
}

func xzBytes(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w, err := xz.NewWriter(&buf)
	must(t, err)
	_, err = w.Write(b)
	must(t, err)
	must(t, w.Close())
	return buf.Bytes()
}

func zstdBytes(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf)
	must(t, err)
	_, err = w.Write(b)
	must(t, err)
	must(t, w.Close())
	return buf.Bytes()
}

// bzip2Bytes uses the bzip2 tool: Go's standard library only decompresses.
func bzip2Bytes(t *testing.T, b []byte) []byte {
	if _, err := exec.LookPath("bzip2"); err != nil {
		t.Skip("the machine lacks the bzip2 tool needed to make a .tar.bz2")
	}
	cmd := exec.Command("bzip2", "-c")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	must(t, err)
	return out
}

func TestAddExtractsArchives(t *testing.T) {
	requireRoot(t)
	formats := map[string]func(*testing.T, []byte) []byte{
		"plain": func(_ *testing.T, b []byte) []byte { return b },
		"gzip":  gzipBytes, "xz": xzBytes, "zstd": zstdBytes, "bzip2": bzip2Bytes,
	}
	for name, compress := range formats {
		t.Run(name, func(t *testing.T) {
			src, root := t.TempDir(), t.TempDir()
			// The name says nothing: detection is by content.
			must(t, os.WriteFile(filepath.Join(src, "archive.bin"), compress(t, sampleTar(t)), 0o644))
			build(t, root, map[string]node{"x": {dir: true, mode: 0o711}, "x/top": {dir: true}, "x/top/f": {data: "old"}})
			written, err := Add(context.Background(), Request{SrcRoot: src, Root: root, Sources: []string{"archive.bin"}, Dest: "/x"}, AddOptions{})
			if err != nil {
				t.Fatal(err)
			}
			checkTree(t, root, map[string]string{
				"x":              "dir 0711 0:0", // the "./" entry leaves the destination alone
				"x/top":          "dir 0750 1:2",
				"x/top/f":        "file 0640 3:4 F",
				"x/top/l":        "link -> f",
				"x/implicit":     "dir 0755 0:0",
				"x/implicit/p/q": "file 0755 0:0 Q",
				"x/archive.bin":  "absent",
			})
			a, err := os.Stat(filepath.Join(root, "x/top/f"))
			must(t, err)
			b, err := os.Stat(filepath.Join(root, "x/top/h"))
			must(t, err)
			if !os.SameFile(a, b) {
				t.Error("hard link x/top/h is not linked to x/top/f")
			}
			for _, p := range []string{"x/top", "x/top/f", "x/implicit/p/q"} {
				if got := mtime(t, root, p); !got.Equal(archiveTime) {
					t.Errorf("%s: mtime %v, want %v", p, got, archiveTime)
				}
			}
			want := []string{"/x/implicit", "/x/top"}
			if !slices.Equal(written, want) {
				t.Errorf("written %q, want %q", written, want)
			}
		})
	}
}

func TestAddArchiveChown(t *testing.T) {
	requireRoot(t)
	src, root := t.TempDir(), t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "a.tar.gz"), gzipBytes(t, sampleTar(t)), 0o644))
	_, err := Add(context.Background(), Request{SrcRoot: src, Root: root, Sources: []string{"a.tar.gz"}, Dest: "/x/", UID: 7, GID: 8}, AddOptions{Chown: true})
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, root, map[string]string{"x": "dir 0755 7:8", "x/top": "dir 0750 7:8", "x/top/f": "file 0640 7:8 F"})
}

func TestAddNonArchivesAreCopied(t *testing.T) {
	requireRoot(t)
	src, root := t.TempDir(), t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "x.tar.gz"), []byte("not an archive"), 0o644))
	// Compressed, but not a tar: Docker copies it as is too.
	must(t, os.WriteFile(filepath.Join(src, "y.gz"), gzipBytes(t, []byte("plain text")), 0o644))
	_, err := Add(context.Background(), Request{SrcRoot: src, Root: root, Sources: []string{"x.tar.gz", "y.gz"}, Dest: "/d/"}, AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, root, map[string]string{"d/x.tar.gz": "file 0644 0:0 not an archive"})
	b, err := os.ReadFile(filepath.Join(root, "d/y.gz"))
	must(t, err)
	if !bytes.Equal(b, gzipBytes(t, []byte("plain text"))) {
		t.Error("d/y.gz was altered")
	}
}

func TestAddArchiveCannotEscape(t *testing.T) {
	requireRoot(t)
	probe := "kiln-escape-probe-" + filepath.Base(t.TempDir())
	tests := map[string][]tar.Header{
		"dotdot": {{Name: "../" + probe, Typeflag: tar.TypeReg, Mode: 0o644}},
		"symlink then through it": {
			{Name: "esc", Typeflag: tar.TypeSymlink, Linkname: "/"},
			{Name: "esc/" + probe, Typeflag: tar.TypeReg, Mode: 0o644},
		},
		"relative symlink then through it": {
			{Name: "esc", Typeflag: tar.TypeSymlink, Linkname: "../../../../../.."},
			{Name: "esc/" + probe, Typeflag: tar.TypeReg, Mode: 0o644},
		},
	}
	for name, hdrs := range tests {
		t.Run(name, func(t *testing.T) {
			src, root := t.TempDir(), t.TempDir()
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, h := range hdrs {
				must(t, tw.WriteHeader(&h))
			}
			must(t, tw.Close())
			must(t, os.WriteFile(filepath.Join(src, "evil.tar"), buf.Bytes(), 0o644))
			_, err := Add(context.Background(), Request{SrcRoot: src, Root: root, Sources: []string{"evil.tar"}, Dest: "/d/"}, AddOptions{})
			if _, serr := os.Lstat("/" + probe); serr == nil {
				os.Remove("/" + probe)
				t.Fatalf("ADD escaped the root: /%s was created", probe)
			}
			if name == "dotdot" {
				if !errContains(err, "points outside the destination") {
					t.Fatalf("error %v, want an escape error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if describe(root, probe) == "absent" {
				t.Errorf("%s not written inside the root", probe)
			}
		})
	}
}

func TestAddURL(t *testing.T) {
	requireRoot(t)
	body := gzipBytes(t, sampleTar(t))
	sum := sha256.Sum256(body)
	good := "sha256:" + hex.EncodeToString(sum[:])
	bad := "sha256:" + strings.Repeat("0", 64)
	lastMod := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	mux := http.NewServeMux()
	mux.HandleFunc("/files/app.tar.gz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Last-Modified", lastMod.Format(http.TimeFormat))
		w.Write(body)
	})
	mux.HandleFunc("/nolm/file.txt", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hi")) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	url := srv.URL + "/files/app.tar.gz"

	tests := []struct {
		name    string
		req     Request
		opts    AddOptions
		want    map[string]string
		written []string
		mtime   time.Time // zero: about now
		noTimes bool
		wantErr []string
	}{
		{name: "into dir, named from the URL, not extracted",
			req:     Request{Sources: []string{url}, Dest: "/dl/"},
			want:    map[string]string{"dl": "dir 0755 0:0", "dl/app.tar.gz": "file 0600 0:0 " + string(body), "dl/top": "absent"},
			written: []string{"/dl"}, mtime: lastMod},
		{name: "to a file name",
			req:  Request{Sources: []string{url}, Dest: "/named"},
			want: map[string]string{"named": "file 0600 0:0 " + string(body)}, written: []string{"/named"}, mtime: lastMod},
		{name: "chmod and chown",
			req:  Request{Sources: []string{url}, Dest: "/named", Mode: fileMode(0o755), UID: 5, GID: 6},
			want: map[string]string{"named": "file 0755 5:6 " + string(body)}, mtime: lastMod},
		{name: "good checksum",
			req: Request{Sources: []string{url}, Dest: "/named"}, opts: AddOptions{Checksum: good},
			want: map[string]string{"named": "file 0600 0:0 " + string(body)}, mtime: lastMod},
		{name: "bad checksum writes nothing",
			req: Request{Sources: []string{url}, Dest: "/new/named"}, opts: AddOptions{Checksum: bad},
			want:    map[string]string{"new": "absent"},
			wantErr: []string{url, good, bad}},
		{name: "no Last-Modified",
			req:  Request{Sources: []string{srv.URL + "/nolm/file.txt"}, Dest: "/"},
			want: map[string]string{"file.txt": "file 0600 0:0 hi"}},
		{name: "HTTP error",
			req:     Request{Sources: []string{srv.URL + "/missing"}, Dest: "/m"},
			want:    map[string]string{"m": "absent"},
			wantErr: []string{srv.URL + "/missing", "404"}},
		{name: "no file name in URL for a dir dest",
			req:     Request{Sources: []string{srv.URL + "/"}, Dest: "/d/"},
			wantErr: []string{"cannot determine a file name"}},
		{name: "git URL",
			req:     Request{Sources: []string{"https://github.com/kilnbuild/kiln.git"}, Dest: "/src"},
			wantErr: []string{"Git sources are not supported"}},
		{name: "checksum on a local source",
			req: Request{Sources: []string{"local.txt"}, Dest: "/"}, opts: AddOptions{Checksum: good},
			wantErr: []string{"checksum can't be specified for non-HTTP(S) sources"}},
		{name: "malformed checksum",
			req: Request{Sources: []string{url}, Dest: "/"}, opts: AddOptions{Checksum: "md5:abc"},
			wantErr: []string{"invalid checksum"}},
		{name: "URL and local file together",
			req: Request{Sources: []string{url, "local.txt"}, Dest: "/both/"}, noTimes: true,
			want: map[string]string{"both/app.tar.gz": "file 0600 0:0 " + string(body), "both/local.txt": "file 0644 0:0 L"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, root := t.TempDir(), t.TempDir()
			build(t, src, map[string]node{"local.txt": {data: "L"}})
			r := tc.req
			r.SrcRoot, r.Root = src, root
			before := time.Now().Add(-time.Minute)
			written, err := Add(context.Background(), r, tc.opts)
			checkTree(t, root, tc.want)
			if tc.wantErr != nil {
				for _, w := range tc.wantErr {
					if !errContains(err, w) {
						t.Errorf("error %v, want it to contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.written != nil && !slices.Equal(written, tc.written) {
				t.Errorf("written %q, want %q", written, tc.written)
			}
			for p, w := range tc.want {
				if !strings.HasPrefix(w, "file") || tc.noTimes {
					continue
				}
				got := mtime(t, root, p)
				if !tc.mtime.IsZero() && !got.Equal(tc.mtime) {
					t.Errorf("%s: mtime %v, want Last-Modified %v", p, got, tc.mtime)
				}
				if tc.mtime.IsZero() && got.Before(before) {
					t.Errorf("%s: mtime %v, want about now", p, got)
				}
			}
		})
	}
}

func TestAddArchiveOntoFileFails(t *testing.T) {
	requireRoot(t)
	src, root := t.TempDir(), t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "a.tar"), sampleTar(t), 0o644))
	build(t, root, map[string]node{"f": {data: "F"}})
	_, err := Add(context.Background(), Request{SrcRoot: src, Root: root, Sources: []string{"a.tar"}, Dest: "/f"}, AddOptions{})
	if !errContains(err, "cannot extract an archive into /f: not a directory") {
		t.Fatalf("error %v, want a not-a-directory error", err)
	}
	checkTree(t, root, map[string]string{"f": "file 0644 0:0 F"})
}
