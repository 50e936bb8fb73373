package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/kilnbuild/kiln/executor"
	"github.com/kilnbuild/kiln/internal/testenv"
)

// The fault tests (faults_*_test.go) break one thing under a build (the disk, the registry,
// the cache, the base image, the RUN's limits) and check that the build ends with an error
// that names the step and the path or registry at fault, leaves nothing half-written, and that
// the next build works once the fault is gone.

// syncBuffer is a log that the logger and RUN output write concurrently.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// dirResult is one in-process executor run in directory mode.
type dirResult struct {
	log string // the executor's log and RUN output
	err error  // Run's error (nil on success)
	img v1.Image
}

// runDirectory runs the executor library in directory mode on the given root and work dir,
// with flags args (the context is ctxDir), at verbosity info in text format.
func runDirectory(t *testing.T, ctxDir, root, work string, args ...string) dirResult {
	t.Helper()
	all := append([]string{"--context", "dir://" + ctxDir, "--log-format", "text"}, args...)
	cfg, err := executor.ParseFlags(all)
	if err != nil {
		t.Fatalf("flags %q: %v", all, err)
	}
	out := &syncBuffer{}
	log, err := executor.NewLogger(out, "text", "info", false)
	if err != nil {
		t.Fatal(err)
	}
	res, err := executor.Run(context.Background(), cfg, executor.WithDirectoryRoot(root), executor.WithWorkDir(work),
		executor.WithLogger(log), executor.WithOutput(out),
		executor.WithLookupEnv(func(string) (string, bool) { return "", false }))
	if err != nil {
		fmt.Fprintf(out, "error: %v\n", err)
	}
	return dirResult{log: out.String(), err: err, img: res.Image}
}

// mustFail fails the test unless r failed with an error containing every one of parts.
func (r dirResult) mustFail(t *testing.T, parts ...string) {
	t.Helper()
	if r.err == nil {
		t.Fatalf("the build succeeded; want an error naming %q\n%s", parts, r.log)
	}
	for _, p := range parts {
		if !strings.Contains(r.err.Error(), p) {
			t.Errorf("error does not name %q:\n  %v", p, r.err)
		}
	}
	t.Logf("the user sees: %v", r.err)
}

// mustSucceed fails the test unless r succeeded.
func (r dirResult) mustSucceed(t *testing.T) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("build failed: %v\n%s", r.err, r.log)
	}
}

// randomData returns n pseudo-random (incompressible) bytes, the same for the same seed.
func randomData(seed uint64, n int) []byte {
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), 'k', 'i', 'l', 'n'}))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// tarLayer returns an uncompressed-then-gzipped layer holding files (path -> content), in
// sorted order, with fixed times.
func tarLayer(t *testing.T, files map[string][]byte) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if err := tw.WriteHeader(&tar.Header{Name: p, Mode: 0o644, Size: int64(len(files[p])), Typeflag: tar.TypeReg,
			ModTime: testenvEpoch}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(files[p]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// pushWithLayer pushes base (in reg) plus one layer as repoTag and returns its reference.
func pushWithLayer(t *testing.T, reg *testenv.Registry, base, repoTag string, layer v1.Layer) string {
	t.Helper()
	img := pullRef(t, reg, base)
	img, err := mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{CreatedBy: "kiln fault test layer"}})
	if err != nil {
		t.Fatal(err)
	}
	return pushRef(t, reg, repoTag, img)
}

// pullRef reads ref from reg (layers lazily).
func pullRef(t *testing.T, reg *testenv.Registry, ref string) v1.Image {
	t.Helper()
	n, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(n, reg.RemoteOptions()...)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	return img
}

// pushRef writes img to reg as repoTag and returns the reference.
func pushRef(t *testing.T, reg *testenv.Registry, repoTag string, img v1.Image) string {
	t.Helper()
	ref := reg.Ref(repoTag)
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img, reg.RemoteOptions()...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return ref
}

// digestOf returns the manifest digest ref has in reg, or "" when it does not exist.
func digestOf(t *testing.T, reg *testenv.Registry, ref string) string {
	t.Helper()
	n, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(n, reg.RemoteOptions()...)
	if err != nil {
		return ""
	}
	return d.Digest.String()
}

// verifyImage pulls every blob of ref from reg and checks it against its digest (and each
// layer against its diffID), as a runtime pulling the image does.
func verifyImage(t *testing.T, reg *testenv.Registry, ref string) {
	t.Helper()
	img := pullRef(t, reg, ref)
	layers, err := img.Layers()
	if err != nil {
		t.Fatalf("%s: layers: %v", ref, err)
	}
	for i, l := range layers {
		rc, err := l.Uncompressed() // verifies the compressed digest as it reads
		if err != nil {
			t.Fatalf("%s: layer %d: %v", ref, i, err)
		}
		h := sha256.New()
		if _, err := io.Copy(h, rc); err != nil {
			t.Errorf("%s: layer %d does not match its digest: %v", ref, i, err)
		}
		rc.Close()
		want, _ := l.DiffID()
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != want.String() {
			t.Errorf("%s: layer %d has diffID %s, its config says %s", ref, i, got, want)
		}
	}
}

// checkBlobsIntact walks every blobs/ALG/HEX file under dir and fails the test for one whose
// content does not hash to its name (a torn or corrupt blob), for an unpack form
// (diffs/sha256/HEX.zst) whose tar does not, or for a leftover temporary file.
func checkBlobsIntact(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		parent := filepath.Base(filepath.Dir(p))
		kind := filepath.Base(filepath.Dir(filepath.Dir(p)))
		if (kind != "blobs" && kind != "diffs") || parent != "sha256" {
			return nil
		}
		name, isForm := strings.CutSuffix(d.Name(), ".zst")
		if len(name) != 64 || isForm != (kind == "diffs") {
			t.Errorf("leftover temporary file in the cache: %s", p)
			return nil
		}
		got := ""
		if isForm {
			got = formSHA256(t, p)
		} else {
			got = fileSHA256(t, p)
		}
		if got != name {
			t.Errorf("torn blob or unpack form in the cache: %s does not hash to its name", p)
		}
		return nil
	})
}

// logWarnings records the warning lines of a log in the test's output (what the user sees).
func logWarnings(t *testing.T, log string) {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		if strings.HasPrefix(line, "WARN") || strings.Contains(line, `"level":"warn"`) {
			t.Logf("the user sees: %s", line)
		}
	}
}
