package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

func TestSplitAndRedactUserinfo(t *testing.T) {
	for _, c := range []struct {
		spec, clean, host, user, password, redacted string
	}{
		{"https://u:p%40ss@mirror.example.com/hub", "https://mirror.example.com/hub", "mirror.example.com", "u", "p@ss", "https://xxxxx@mirror.example.com/hub"},
		{"token@mirror.example.com:5000", "mirror.example.com:5000", "mirror.example.com:5000", "token", "", "xxxxx@mirror.example.com:5000"},
		{"mirror.gcr.io", "mirror.gcr.io", "", "", "", "mirror.gcr.io"},
		{"https://mirror.example.com/a@b", "https://mirror.example.com/a@b", "", "", "", "https://mirror.example.com/a@b"},
	} {
		clean, host, user, password, ok := splitUserinfo(c.spec)
		if clean != c.clean || host != c.host || user != c.user || password != c.password || ok != (c.host != "") {
			t.Errorf("splitUserinfo(%q) = %q %q %q %q %v", c.spec, clean, host, user, password, ok)
		}
		if got := RedactUserinfo(c.spec); got != c.redacted {
			t.Errorf("RedactUserinfo(%q) = %q, want %q", c.spec, got, c.redacted)
		}
	}
}

// A mirror given with user info is reached with those credentials, and no error shows them.
func TestMirrorCredentialsFromUserinfo(t *testing.T) {
	mirror := newTestRegistry(t)
	img := randomImage(t, 1)
	seed(t, mirror.host+"/library/alpine:3", img)
	var sawAuth bool
	mirror.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		u, p, ok := r.BasicAuth()
		if ok && u == "robot" && p == "s3cret-token" {
			sawAuth = true
			return false
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.WriteHeader(http.StatusUnauthorized)
		return true
	})
	got, err := Pull(context.Background(), "alpine:3", anon(), WithMirrors("http://robot:s3cret-token@"+mirror.host))
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, got) != digestOf(t, img) || !sawAuth {
		t.Errorf("the mirror's credentials were not used (auth seen: %v)", sawAuth)
	}
	_, err = Pull(context.Background(), "alpine:3", anon(), WithMirrors("http://robot:wrong-token@"+mirror.host),
		WithSkipDefaultRegistryFallback(true))
	if err == nil || strings.Contains(err.Error(), "wrong-token") || !strings.Contains(err.Error(), mirror.host) {
		t.Errorf("err = %v; want the mirror named without its token", err)
	}
}

func TestRetryablePredicate(t *testing.T) {
	refused := &url.Error{Op: "Get", URL: "http://r/v2/", Err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{refused, true},
		{fmt.Errorf("wrapped: %w", syscall.ECONNRESET), true},
		{io.ErrUnexpectedEOF, true},
		{context.Canceled, false},
		{errors.New("manifest unknown"), false},
		{nil, false},
	} {
		if got := retryable(c.err); got != c.want {
			t.Errorf("retryable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// A failed request is described without its query (upload state, signed URLs) or user info.
func TestDescribeURLErrorDropsQueryAndUserinfo(t *testing.T) {
	err := &url.Error{Op: "Put", URL: "https://u:pw@reg.example.com/v2/a/blobs/uploads/123?_state=SECRET&digest=sha256%3Aabc",
		Err: fmt.Errorf("write: %w", syscall.ECONNRESET)}
	got := (&Error{Op: "push", Ref: "reg.example.com/a:1", Err: err}).Error()
	want := "push reg.example.com/a:1: Put https://reg.example.com/v2/a/blobs/uploads/123 (blob sha256:abc): connection reset by peer"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// AddToOCILayout writes whole files only: a blob that does not match its digest is refused and
// leaves nothing; a damaged index.json is reported, not overwritten.
func TestAddToOCILayoutIsAtomic(t *testing.T) {
	dir := t.TempDir()
	img := randomImage(t, 2)
	if err := AddToOCILayout(dir, img, "one"); err != nil {
		t.Fatal(err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, _ := idx.IndexManifest()
	if len(m.Manifests) != 1 || m.Manifests[0].Annotations[refNameAnnotation] != "one" {
		t.Fatalf("index %+v", m.Manifests)
	}
	// Replacing by name keeps one entry per name.
	if err := AddToOCILayout(dir, randomImage(t, 1), "one", "two"); err != nil {
		t.Fatal(err)
	}
	var index v1.IndexManifest
	b, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	if err := json.Unmarshal(b, &index); err != nil || len(index.Manifests) != 2 {
		t.Fatalf("index after replace: %d entries, %v", len(index.Manifests), err)
	}

	// A layer whose content does not match its digest.
	other := t.TempDir()
	err = AddToOCILayout(other, lyingImage{randomImage(t, 1)}, "x")
	if err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("err = %v, want a digest mismatch", err)
	}
	blobs, _ := filepath.Glob(filepath.Join(other, "blobs", "sha256", "*"))
	hidden, _ := filepath.Glob(filepath.Join(other, "blobs", "sha256", ".*"))
	if len(blobs)+len(hidden) != 0 {
		t.Errorf("a refused blob left files: %v %v", blobs, hidden)
	}
	if _, err := os.Stat(filepath.Join(other, "index.json")); err == nil {
		t.Error("index.json written although the image's blobs were not")
	}

	if err := os.WriteFile(filepath.Join(dir, "index.json"), []byte("{torn"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = AddToOCILayout(dir, img, "three")
	if !errors.Is(err, ErrDamagedLayoutIndex) {
		t.Fatalf("err = %v, want ErrDamagedLayoutIndex", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "index.json")); string(b) != "{torn" {
		t.Error("a damaged index.json was overwritten")
	}
}

// lyingImage serves layers whose bytes differ from what their digest says.
type lyingImage struct{ v1.Image }

func (l lyingImage) Layers() ([]v1.Layer, error) {
	ls, err := l.Image.Layers()
	out := make([]v1.Layer, len(ls))
	for i, x := range ls {
		out[i] = lyingLayer{x}
	}
	return out, err
}

type lyingLayer struct{ v1.Layer }

func (l lyingLayer) Compressed() (io.ReadCloser, error) {
	size, _ := l.Size()
	return io.NopCloser(strings.NewReader(strings.Repeat("x", int(size)))), nil
}

// WithTagsReplaced writes a tag without asking what it points at: a tag whose manifest the
// registry cannot even serve is replaced.
func TestPushWithTagsReplaced(t *testing.T) {
	reg := newTestRegistry(t)
	ref := reg.host + "/cache/entry:key"
	seed(t, ref, randomImage(t, 1))
	reg.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodHead && strings.HasSuffix(r.URL.Path, "/manifests/key") {
			w.WriteHeader(http.StatusInternalServerError) // the tag's manifest is damaged
			return true
		}
		return false
	})
	img := randomImage(t, 1)
	if _, err := Push(context.Background(), img, []string{ref}, anon(), WithRetries(0)); err == nil {
		t.Fatal("a plain push through a failing tag check succeeded; the test does not test anything")
	}
	if _, err := Push(context.Background(), img, []string{ref}, anon(), WithRetries(0), WithTagsReplaced()); err != nil {
		t.Fatalf("push with WithTagsReplaced: %v", err)
	}
	reg.setIntercept(nil)
	tag, _ := name.NewTag(ref)
	if d := digestOf(t, pull(t, tag.String())); d != digestOf(t, img) {
		t.Errorf("the tag points at %s, want the pushed image", d)
	}
}

func pull(t *testing.T, ref string) v1.Image {
	t.Helper()
	img, err := Pull(context.Background(), ref, anon())
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestTransient(t *testing.T) {
	if !Transient(fmt.Errorf("x: %w", syscall.ECONNREFUSED)) || Transient(errors.New("denied")) {
		t.Error("Transient misclassifies network errors")
	}
	if !Transient(&transport.Error{StatusCode: http.StatusServiceUnavailable}) || Transient(&transport.Error{StatusCode: http.StatusUnauthorized}) {
		t.Error("Transient misclassifies registry answers")
	}
}
