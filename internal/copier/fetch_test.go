package copier

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAddFetched: a source the caller fetched (a Git checkout) is copied as a directory, with
// its own exclusions and the request's owner; the context's .dockerignore does not apply.
func TestAddFetched(t *testing.T) {
	requireRoot(t)
	checkout, ctxDir, root := t.TempDir(), t.TempDir(), t.TempDir()
	build(t, checkout, map[string]node{"README.md": {data: "r", uid: 5}, "bin": {dir: true}, "bin/tool": {data: "t", mode: 0o755},
		"docs": {dir: true}, "docs/x.md": {data: "d"}})
	build(t, ctxDir, map[string]node{"local.txt": {data: "l"}})
	fetch := func(src string) (Fetched, bool, error) {
		if !strings.HasSuffix(src, ".git") {
			return Fetched{}, false, nil
		}
		return Fetched{Path: checkout, Exclude: func(rel string) bool { return rel == "docs" || strings.HasPrefix(rel, "docs/") }}, true, nil
	}
	_, err := Add(context.Background(), Request{SrcRoot: ctxDir, Root: root, Sources: []string{"https://host/repo.git"},
		Dest: "/src", Exclude: dockerignore(t, "README.md")}, AddOptions{Fetch: fetch})
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, root, map[string]string{"src/README.md": "file 0644 0:0 r", "src/bin/tool": "file 0755 0:0 t",
		"src/docs": "absent"})
	// Mixed with a local source into a directory.
	root = t.TempDir()
	if _, err := Add(context.Background(), Request{SrcRoot: ctxDir, Root: root, Sources: []string{"https://host/repo.git", "local.txt"},
		Dest: "/all/"}, AddOptions{Fetch: fetch}); err != nil {
		t.Fatal(err)
	}
	checkTree(t, root, map[string]string{"all/README.md": "file 0644 0:0 r", "all/local.txt": "file 0644 0:0 l"})
	// A Git URL no one fetched is still an error.
	_, err = Add(context.Background(), Request{SrcRoot: ctxDir, Root: t.TempDir(), Sources: []string{"git@host:x.git"}, Dest: "/d"}, AddOptions{})
	if err == nil || !strings.Contains(err.Error(), "Git sources are not supported") {
		t.Errorf("unfetched Git source: %v", err)
	}
}

// TestAddUnpack: --unpack=true extracts a downloaded archive, --unpack=false copies a local one.
func TestAddUnpack(t *testing.T) {
	requireRoot(t)
	archive := gzipBytes(t, sampleTar(t))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/plain.txt" {
			_, _ = w.Write([]byte("plain"))
			return
		}
		_, _ = w.Write(archive)
	}))
	defer srv.Close()
	yes, no := true, false
	src, root := t.TempDir(), t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "a.tar.gz"), archive, 0o644))
	for _, c := range []struct {
		sources []string
		dest    string
		unpack  *bool
		want    map[string]string
	}{
		{[]string{srv.URL + "/a.tar.gz"}, "/remote", &yes, map[string]string{"remote/top/f": "file 0640 3:4 F", "remote/a.tar.gz": "absent"}},
		{[]string{srv.URL + "/plain.txt"}, "/notarchive/", &yes, map[string]string{"notarchive/plain.txt": "file 0600 0:0 plain"}},
		{[]string{srv.URL + "/a.tar.gz"}, "/kept/", nil, map[string]string{"kept/top": "absent"}},
		{[]string{"a.tar.gz"}, "/local/", &no, map[string]string{"local/top": "absent"}},
	} {
		if _, err := Add(context.Background(), Request{SrcRoot: src, Root: root, Sources: c.sources, Dest: c.dest},
			AddOptions{Unpack: c.unpack}); err != nil {
			t.Fatalf("%v to %s: %v", c.sources, c.dest, err)
		}
		checkTree(t, root, c.want)
	}
	if fi, err := os.Stat(filepath.Join(root, "local/a.tar.gz")); err != nil || fi.Size() != int64(len(archive)) {
		t.Errorf("--unpack=false: local/a.tar.gz %v %v, want the archive as it is", fi, err)
	}
}
