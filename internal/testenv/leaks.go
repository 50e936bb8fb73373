package testenv

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Secrets are values planted in a build (passwords, tokens, build args) that must not show up
// in anything it leaves: its log, its image, its cache. Each is searched for as is and in the
// encodings a leak would take (base64, as in an Authorization header or config.json's "auth").
type Secrets struct {
	byForm map[string]string // searched form -> "name" or "name (base64)"
}

// NewSecret returns a value unique to this test run, for planting: "kiln-<what>-<random hex>".
func NewSecret(t testing.TB, what string) string {
	return "kiln-" + what + "-" + randomHex(t, 12)
}

// Add plants value under name; also searched for: base64 of value and of "user:value" pairs
// given as extra.
func (s *Secrets) Add(name, value string, extra ...string) {
	if s.byForm == nil {
		s.byForm = map[string]string{}
	}
	s.byForm[value] = name
	s.byForm[base64.StdEncoding.EncodeToString([]byte(value))] = name + " (base64)"
	for _, e := range extra {
		s.byForm[base64.StdEncoding.EncodeToString([]byte(e))] = name + " (base64 of " + strings.SplitN(e, ":", 2)[0] + ":…)"
	}
}

// Leak is one planted value found somewhere.
type Leak struct {
	Secret string // the secret's name
	Where  string // the file, image part or log, and the line when it is text
}

func (l Leak) String() string { return l.Secret + " in " + l.Where }

// Scan returns the secrets found in b, which is named where.
func (s *Secrets) Scan(where string, b []byte) []Leak {
	var out []Leak
	for form, secret := range s.byForm {
		i := bytes.Index(b, []byte(form))
		if i < 0 {
			continue
		}
		out = append(out, Leak{Secret: secret, Where: where + ": …" + excerpt(b, i, len(form)) + "…"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// excerpt is the text around b[i:i+n], on one line, at most 160 bytes each side.
func excerpt(b []byte, i, n int) string {
	start, end := max(0, i-160), min(len(b), i+n+160)
	if j := bytes.LastIndexByte(b[start:i], '\n'); j >= 0 {
		start += j + 1
	}
	if j := bytes.IndexByte(b[i:end], '\n'); j >= 0 {
		end = i + j
	}
	return strings.ToValidUTF8(string(b[start:end]), "?")
}

// ScanTree searches every file under dir: its bytes, its content if gzip-compressed, and each
// entry of a tar (plain or compressed) with the entries' names, recursively (a tar of gzipped
// layers, an OCI layout, a cache directory).
func (s *Secrets) ScanTree(t testing.TB, dir string) []Leak {
	t.Helper()
	var out []Leak
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		out = append(out, s.Scan("path "+p, []byte(p))...)
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		out = append(out, s.scanStream(p, f, 0)...)
		return nil
	})
	if err != nil {
		t.Fatalf("testenv: scan %s: %v", dir, err)
	}
	return out
}

// ScanRepository searches every tag of repo in r: manifests, configs and layer contents.
func (s *Secrets) ScanRepository(t testing.TB, r *Registry, repo string) []Leak {
	t.Helper()
	rp, err := name.NewRepository(repo, r.nameOptions()...)
	if err != nil {
		t.Fatalf("testenv: %q: %v", repo, err)
	}
	tags, err := remote.List(rp, r.RemoteOptions()...)
	if err != nil {
		t.Fatalf("testenv: list %s: %v", repo, err)
	}
	var out []Leak
	for _, tag := range tags {
		out = append(out, s.Scan("tag "+repo+":"+tag, []byte(tag))...)
		out = append(out, s.ScanImage(t, r, repo+":"+tag)...)
	}
	return out
}

// ScanImage searches ref's manifest, config (history included) and every layer's files (names,
// link targets and content).
func (s *Secrets) ScanImage(t testing.TB, r *Registry, ref string) []Leak {
	t.Helper()
	img := pullImage(t, r, ref)
	var out []Leak
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatalf("testenv: manifest of %s: %v", ref, err)
	}
	out = append(out, s.Scan(ref+" manifest", raw)...)
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatalf("testenv: config of %s: %v", ref, err)
	}
	out = append(out, s.Scan(ref+" config", cfg)...)
	layers, err := img.Layers()
	if err != nil {
		t.Fatalf("testenv: layers of %s: %v", ref, err)
	}
	for i, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("testenv: layer %d of %s: %v", i, ref, err)
		}
		out = append(out, s.scanStream(fmt.Sprintf("%s layer %d", ref, i), rc, 0)...)
		rc.Close()
	}
	return out
}

// scanStream searches r's bytes and, when r is gzip or a tar, what it holds (up to depth 3).
func (s *Secrets) scanStream(where string, r io.Reader, depth int) []Leak {
	br := bufio.NewReaderSize(r, 1<<20)
	head, _ := br.Peek(512)
	switch {
	case depth < 3 && len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil
		}
		return s.scanStream(where+" (gunzipped)", zr, depth+1)
	case depth < 3 && isTarHeader(head):
		var out []Leak
		tr := tar.NewReader(br)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) || err != nil {
				return out
			}
			entry := where + " entry " + hdr.Name
			out = append(out, s.Scan(entry+" (name)", []byte(hdr.Name+"\x00"+hdr.Linkname))...)
			for k, v := range hdr.PAXRecords {
				out = append(out, s.Scan(entry+" (pax "+k+")", []byte(v))...)
			}
			out = append(out, s.scanStream(entry, tr, depth+1)...)
		}
	}
	b, err := io.ReadAll(br)
	if err != nil {
		return nil
	}
	return s.Scan(where, b)
}

// isTarHeader reports whether b starts with a ustar or GNU tar header.
func isTarHeader(b []byte) bool {
	return len(b) >= 512 && (bytes.Equal(b[257:262], []byte("ustar")))
}
