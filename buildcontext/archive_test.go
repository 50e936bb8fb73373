package buildcontext

import (
	"archive/tar"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sampleTar(t *testing.T, gz bool) []byte {
	return makeTar(t, gz,
		dir("app/"), file("app/Dockerfile", "FROM busybox\n"), file("app/main.sh", "echo hi\n"),
		entry{name: "app/link", link: "main.sh", typ: tar.TypeSymlink}, file("README", "top\n"))
}

func checkSample(t *testing.T, dir string) {
	t.Helper()
	wantFile(t, filepath.Join(dir, "README"), "top\n")
	wantFile(t, filepath.Join(dir, "app/Dockerfile"), "FROM busybox\n")
	if l, err := os.Readlink(filepath.Join(dir, "app/link")); err != nil || l != "main.sh" {
		t.Fatalf("app/link: %q, %v", l, err)
	}
}

func TestPrepareTarFile(t *testing.T) {
	for _, gz := range []bool{true, false} {
		archive := filepath.Join(t.TempDir(), "ctx.tar.gz")
		if err := os.WriteFile(archive, sampleTar(t, gz), 0o644); err != nil {
			t.Fatal(err)
		}
		o := work(t)
		got, err := Prepare(context.Background(), "tar://"+archive, o)
		if err != nil {
			t.Fatalf("gzip %v: %v", gz, err)
		}
		if got != o.WorkDir {
			t.Fatalf("unpacked into %s, want %s", got, o.WorkDir)
		}
		checkSample(t, got)
	}
}

func TestPrepareTarStdin(t *testing.T) {
	for _, gz := range []bool{true, false} {
		o := work(t)
		o.Stdin = bytes.NewReader(sampleTar(t, gz))
		o.SubPath = "app"
		got, err := Prepare(context.Background(), "tar://stdin", o)
		if err != nil {
			t.Fatalf("gzip %v: %v", gz, err)
		}
		if got != filepath.Join(o.WorkDir, "app") {
			t.Fatalf("got %s, want the sub-path app of %s", got, o.WorkDir)
		}
		wantFile(t, filepath.Join(got, "main.sh"), "echo hi\n")
	}
}

func TestPrepareTarStdinErrors(t *testing.T) {
	for name, c := range map[string]struct {
		stdin *bytes.Reader
		want  string
	}{
		"none":      {nil, "no standard input"},
		"empty":     {bytes.NewReader(nil), "the archive is empty"},
		"not a tar": {bytes.NewReader([]byte(strings.Repeat("hello world\n", 100))), "reading layer tar"},
		"truncated": {bytes.NewReader(sampleTar(t, true)[:60]), "unpacking standard input"},
	} {
		o := work(t)
		if c.stdin != nil {
			o.Stdin = c.stdin
		}
		_, err := Prepare(context.Background(), "tar://stdin", o)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "--context=tar://stdin") {
			t.Errorf("%s: got %v, want an error containing %q", name, err, c.want)
		}
	}
}

// Malicious archives cannot write outside the unpack directory.
func TestPrepareTarRejectsEscapes(t *testing.T) {
	for name, entries := range map[string][]entry{
		"dot-dot":      {file("../escaped", "x")},
		"deep dot-dot": {dir("a/"), file("a/../../escaped", "x")},
		"symlink dir":  {{name: "up", link: "..", typ: tar.TypeSymlink}, file("up/escaped", "x")},
		"abs symlink":  {{name: "up", link: "/PARENT", typ: tar.TypeSymlink}, file("up/escaped", "x")},
		"hardlink out": {{name: "h", link: "../victim", typ: tar.TypeLink}},
	} {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			writeFiles(t, parent, map[string]string{"victim": "safe"})
			for i := range entries {
				entries[i].link = strings.ReplaceAll(entries[i].link, "/PARENT", parent)
			}
			o := Options{WorkDir: filepath.Join(parent, "ctx"), Stdin: bytes.NewReader(makeTar(t, true, entries...))}
			_, _ = Prepare(context.Background(), "tar://stdin", o) // an error or a contained result
			wantAbsent(t, filepath.Join(parent, "escaped"))
			wantFile(t, filepath.Join(parent, "victim"), "safe")
			if b, err := os.ReadFile(filepath.Join(o.WorkDir, "h")); err == nil && string(b) == "safe" {
				t.Fatal("a hardlink reached a file outside the context")
			}
		})
	}
}

func TestPrepareHTTPS(t *testing.T) {
	archive := sampleTar(t, true)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ctx.tar.gz" {
			http.NotFound(w, r)
			return
		}
		w.Write(archive)
	}))
	defer srv.Close()
	o := work(t)
	o.HTTPClient = srv.Client()
	got, err := Prepare(context.Background(), srv.URL+"/ctx.tar.gz", o)
	if err != nil {
		t.Fatal(err)
	}
	checkSample(t, got)

	o = work(t)
	o.HTTPClient = srv.Client()
	_, err = Prepare(context.Background(), srv.URL+"/missing.tar.gz", o)
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "missing.tar.gz") {
		t.Fatalf("missing archive: got %v, want a 404 naming the URL", err)
	}
	// Without the test CA the server is not trusted.
	_, err = Prepare(context.Background(), srv.URL+"/ctx.tar.gz", work(t))
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted server: got %v, want a certificate error", err)
	}
}

func TestPrepareHTTP(t *testing.T) {
	archive := sampleTar(t, false)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(archive) }))
	defer srv.Close()
	got, err := Prepare(context.Background(), srv.URL+"/ctx.tar", work(t))
	if err != nil {
		t.Fatal(err)
	}
	checkSample(t, got)
}
