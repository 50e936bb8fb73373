package builder_test

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/cache"
	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/internal/testenv/gitserver"
	"github.com/kilnbuild/kiln/registry"
)

// events records a build's events.
type events struct {
	mu  sync.Mutex
	all []builder.Event
}

func (e *events) Report(ev builder.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

// of lists "instruction" of every event of a kind (or its message when it has no instruction).
func (e *events) of(kind builder.EventKind) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.all {
		if ev.Kind == kind {
			if ev.Instruction != "" {
				out = append(out, ev.Instruction)
			} else {
				out = append(out, ev.Message)
			}
		}
	}
	return out
}

// layerNames lists the entries of an image's last layer.
func layerNames(t *testing.T, img v1.Image) []string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) == 0 {
		t.Fatalf("layers: %v (%d)", err, len(layers))
	}
	rc, err := layers[len(layers)-1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out []string
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, hdr.Name)
	}
}

func TestSyntaxAndCheckDirectivesAreNoted(t *testing.T) {
	ev := &events{}
	buildConfig(t, "# syntax=docker/dockerfile:1\n# check=skip=JSONArgsRecommended;error=true\nFROM scratch\nENV A=1\n", nil,
		builder.WithReporter(ev))
	want := []string{"syntax directive docker/dockerfile:1 noted; Kiln's own parser is used",
		"check directive skip=JSONArgsRecommended;error=true noted; Kiln runs no build checks"}
	if got := ev.of(builder.EventNote); !reflect.DeepEqual(got, want) {
		t.Errorf("notes %q, want %q", got, want)
	}
}

func TestCopyParents(t *testing.T) {
	files := map[string]string{"x/a.txt": "xa", "y/a.txt": "ya", "src/app/main.go": "m", "src/app/util/u.go": "u",
		"src/app/README.md": "r"}
	_, img := buildConfig(t, `FROM scratch AS ctx
COPY . /
FROM scratch
COPY --parents ./x/a.txt ./y/a.txt /parents/
COPY --parents src/./app/**/*.go /go/
COPY --from=ctx --parents /src/./app/util /from/
`, files)
	got := imageFiles(t, img)
	for p, want := range map[string]string{"parents/x/a.txt": "xa", "parents/y/a.txt": "ya",
		"go/app/main.go": "m", "go/app/util/u.go": "u", "from/app/util/u.go": "u"} {
		if got[p] != want {
			t.Errorf("%s = %q, want %q", p, got[p], want)
		}
	}
	if _, ok := got["go/app/README.md"]; ok {
		t.Error("go/app/README.md copied: the pattern only selects *.go")
	}
}

// TestCopyLinkLayer: the --link layer is exactly the copied file and its parent, whatever lies
// under it; without --link the same COPY follows the base's symlink.
func TestCopyLinkLayer(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base")
	if err := os.MkdirAll(filepath.Join(base, "opt/app"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("opt/app", filepath.Join(base, "app")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "opt/app/old"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	df := "FROM scratch AS base\nCOPY --from=basedir / /\nFROM base\nCOPY %s f /app/f\nRUN_NOTHING\n"
	for _, c := range []struct {
		flag  string
		layer []string
		files []string
	}{
		{"--link", []string{"app/", "app/f"}, []string{"app/f", "opt/app/old"}},
		{"", []string{"opt/", "opt/app/", "opt/app/f"}, []string{"app", "opt/app/f", "opt/app/old"}},
	} {
		text := strings.Replace(strings.Replace(df, "%s", c.flag, 1), "RUN_NOTHING\n", "", 1)
		_, img := buildConfig(t, text, map[string]string{"f": "new"},
			builder.WithBuildContexts(builder.BuildContext{Name: "basedir", Value: "dir://" + base}))
		if got := layerNames(t, img); !reflect.DeepEqual(got, c.layer) {
			t.Errorf("COPY %s: layer %q, want %q", c.flag, got, c.layer)
		}
		got := imageFiles(t, img)
		for _, p := range c.files {
			if _, ok := got[p]; !ok {
				t.Errorf("COPY %s: %s missing from the image", c.flag, p)
			}
		}
	}
	// A destination without a trailing slash is a file in the empty filesystem, so it replaces
	// the directory the stage has there (FROM scratch + COPY f /bin, stacked on the stage).
	if err := os.MkdirAll(filepath.Join(base, "usr/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "usr/bin/old"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, img := buildConfig(t, "FROM scratch AS base\nCOPY --from=basedir / /\nFROM base\nCOPY --link f /usr/bin\n",
		map[string]string{"f": "new"}, builder.WithBuildContexts(builder.BuildContext{Name: "basedir", Value: "dir://" + base}))
	if got := imageFiles(t, img); got["usr/bin"] != "new" || got["usr/bin/old"] != "" {
		t.Errorf("COPY --link f /usr/bin over a directory: usr/bin %q, usr/bin/old %q", got["usr/bin"], got["usr/bin/old"])
	}
	// Names cannot be resolved in an empty filesystem.
	err := buildErr(t, "FROM scratch\nCOPY --link --chown=nobody f /f\n", map[string]string{"f": "x"})
	if err == nil || !strings.Contains(err.Error(), "use numeric uid[:gid]") || !strings.Contains(err.Error(), "Dockerfile:2") {
		t.Errorf("--link --chown=nobody: %v", err)
	}
}

// buildErr builds and returns the error.
func buildErr(t *testing.T, df string, files map[string]string, opts ...builder.Option) error {
	t.Helper()
	dir := t.TempDir()
	ctxDir := filepath.Join(dir, "context")
	for p, content := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(ctxDir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ctxDir, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opts = append([]builder.Option{builder.WithDirectoryRoot(filepath.Join(dir, "rootfs")),
		builder.WithWorkDir(filepath.Join(dir, "work")), builder.WithContextDir(ctxDir)}, opts...)
	_, err := builder.Build(context.Background(), dockerfile.Source{Name: "Dockerfile", Data: []byte(df)}, opts...)
	return err
}

// TestCopyLinkRebases: after the base changes, a COPY --link comes from the cache (its layer is
// the same blob), while a plain COPY after it misses.
func TestCopyLinkRebases(t *testing.T) {
	dir := t.TempDir()
	store := cache.NewLayoutStore(filepath.Join(dir, "cache"))
	ctxDir := filepath.Join(dir, "context")
	write := func(name, content string) {
		if err := os.MkdirAll(ctxDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ctxDir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("base.txt", "base v1")
	write("app.txt", "app")
	write("conf.txt", "conf")
	src := dockerfile.Source{Name: "Dockerfile", Data: []byte("FROM scratch\nCOPY base.txt /base.txt\nENV V=1\n" +
		"COPY --link app.txt /app/app.txt\nCOPY conf.txt /conf.txt\n")}
	build := func() (*events, v1.Image) {
		ev := &events{}
		img, err := builder.Build(context.Background(), src, builder.WithDirectoryRoot(filepath.Join(dir, "rootfs")),
			builder.WithWorkDir(filepath.Join(dir, "work")), builder.WithContextDir(ctxDir), builder.WithReproducible(true),
			builder.WithCache(store, builder.CacheCopyLayers(true)), builder.WithReporter(ev))
		if err != nil {
			t.Fatal(err)
		}
		return ev, img
	}
	_, first := build()
	write("base.txt", "base v2")
	ev, second := build()
	if hits := ev.of(builder.EventCacheHit); !slices.Equal(hits, []string{"COPY --link app.txt /app/app.txt"}) {
		t.Errorf("hits %q, want the --link COPY only", hits)
	}
	l1, l2 := layerDigest(t, first, 1), layerDigest(t, second, 1)
	if l1 != l2 {
		t.Errorf("the --link layer changed with the base: %s, then %s", l1, l2)
	}
	if got := imageFiles(t, second); got["base.txt"] != "base v2" || got["app/app.txt"] != "app" || got["conf.txt"] != "conf" {
		t.Errorf("image after the rebase: %q", got)
	}
}

func layerDigest(t *testing.T, img v1.Image, i int) v1.Hash {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	d, err := layers[i].Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestNamedContexts: a directory context for COPY --from and FROM, one replacing a stage (whose
// instructions then never run), and an OCI layout context by tag and by digest.
func TestNamedContexts(t *testing.T) {
	dir := t.TempDir()
	extra := filepath.Join(dir, "extra")
	for p, c := range map[string]string{"lib/a.txt": "A", "secret.key": "no", ".dockerignore": "*.key\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(extra, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(extra, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, oci := buildConfig(t, "FROM scratch\nCOPY v.txt /v.txt\n", map[string]string{"v.txt": "from the layout"})
	lp := filepath.Join(dir, "layout")
	if err := registry.WriteOCILayout(lp, oci, "v1"); err != nil {
		t.Fatal(err)
	}
	// The layout holds the image with OCI media types: its digest is the one index.json says.
	idx, err := layout.ImageIndexFromPath(lp)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	ociDigest := m.Manifests[0].Digest
	contexts := builder.WithBuildContexts(
		builder.BuildContext{Name: "extra", Value: "dir://" + extra},
		builder.BuildContext{Name: "deps", Value: extra},
		builder.BuildContext{Name: "tools", Value: "oci-layout://" + lp + ":v1"},
		builder.BuildContext{Name: "tools2", Value: "oci-layout://" + lp + "@" + ociDigest.String()},
	)
	_, img := buildConfig(t, `FROM scratch AS deps
COPY does-not-exist /never
FROM extra AS fromctx
FROM scratch
COPY --from=extra lib/a.txt /copied/a.txt
COPY --from=fromctx /lib /fromctx/lib
COPY --from=deps . /deps/
COPY --from=tools /v.txt /v.txt
COPY --from=tools2 /v.txt /v2.txt
`, nil, contexts)
	got := imageFiles(t, img)
	for p, want := range map[string]string{"copied/a.txt": "A", "fromctx/lib/a.txt": "A", "deps/lib/a.txt": "A", "v.txt": "from the layout", "v2.txt": "from the layout"} {
		if got[p] != want {
			t.Errorf("%s = %q, want %q", p, got[p], want)
		}
	}
	for _, p := range []string{"deps/secret.key", "never"} {
		if _, ok := got[p]; ok {
			t.Errorf("%s is in the image", p)
		}
	}
	// FROM a name that is an image reference is overridden too, alpine:latest being alpine.
	_, img = buildConfig(t, "FROM alpine:latest\n", nil,
		builder.WithBuildContexts(builder.BuildContext{Name: "docker.io/library/alpine", Value: "oci-layout://" + lp}))
	if got := imageFiles(t, img); got["v.txt"] != "from the layout" {
		t.Errorf("FROM alpine with a context named docker.io/library/alpine: %q", got)
	}
	if _, err := builder.ParseBuildContext("context=dir:///x"); err == nil {
		t.Error("the reserved name context was accepted")
	}
	if _, err := builder.ParseBuildContext("x=ftp://host/x"); err == nil {
		t.Error("an unknown kind was accepted")
	}
}

// TestAddGit: ADD of a repository served over http (a branch and a sub-directory, with and
// without .git), keyed by the commit the branch is at: a new commit misses, none hits.
func TestAddGit(t *testing.T) {
	srv := gitserver.Serve(t, false)
	repo := gitserver.NewRepo(t)
	gitserver.Commit(t, repo, "main", map[string]string{"README": "main"})
	gitserver.Git(t, repo, "checkout", "-q", "-b", "dev")
	gitserver.Commit(t, repo, "dev", map[string]string{"README": "dev", "docs/guide.md": "guide", "run.sh": "#!/bin/sh\n"})
	gitserver.Git(t, repo, "update-index", "--chmod=+x", "run.sh")
	gitserver.Git(t, repo, "commit", "-q", "-m", "exec")
	srv.Publish(t, repo, "app.git")
	url := srv.URL + "/app.git"

	dir := t.TempDir()
	store := cache.NewLayoutStore(filepath.Join(dir, "cache"))
	src := dockerfile.Source{Name: "Dockerfile", Data: []byte("FROM scratch\nADD " + url + "#dev /src\n" +
		"ADD " + url + "#dev:docs /docs\nADD --keep-git-dir=true " + url + " /withgit/\n")}
	build := func() (*events, v1.Image) {
		ev := &events{}
		img, err := builder.Build(context.Background(), src, builder.WithDirectoryRoot(filepath.Join(dir, "rootfs")),
			builder.WithWorkDir(filepath.Join(dir, "work")), builder.WithContextDir(t.TempDir()),
			builder.WithCache(store, builder.CacheCopyLayers(true)), builder.WithReporter(ev))
		if err != nil {
			t.Fatal(err)
		}
		return ev, img
	}
	_, img := build()
	got := imageFiles(t, img)
	for p, want := range map[string]string{"src/README": "dev", "src/docs/guide.md": "guide", "docs/guide.md": "guide",
		"withgit/README": "dev"} { // the default branch is the one checked out when published
		if got[p] != want {
			t.Errorf("%s = %q, want %q", p, got[p], want)
		}
	}
	for p, present := range map[string]bool{"src/.git/HEAD": false, "withgit/.git/HEAD": true, "docs/README": false} {
		if _, ok := got[p]; ok != present {
			t.Errorf("%s in the image: %v, want %v", p, ok, present)
		}
	}
	if mode := fileMode(t, img, "src/run.sh"); mode != 0o755 {
		t.Errorf("src/run.sh mode %o, want 755", mode)
	}
	ev, _ := build()
	if n := len(ev.of(builder.EventCacheHit)); n != 3 {
		t.Errorf("unchanged repository: %d hits, want 3", n)
	}
	gitserver.Commit(t, repo, "more", map[string]string{"README": "dev 2"})
	srv.Publish(t, repo, "app.git")
	ev, img = build()
	if misses := ev.of(builder.EventCacheMiss); len(misses) != 3 { // all three read dev (the default branch too)
		t.Errorf("after a commit on dev: misses %q", misses)
	}
	if got := imageFiles(t, img); got["src/README"] != "dev 2" {
		t.Errorf("src/README = %q after the new commit", got["src/README"])
	}
	err := buildErr(t, "FROM scratch\nADD --checksum=0000000 "+url+"#dev /src\n", nil)
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch") || !strings.Contains(err.Error(), "Dockerfile:2") {
		t.Errorf("wrong --checksum: %v", err)
	}
	err = buildErr(t, "FROM scratch\nADD git@127.0.0.1:app.git /src\n", nil)
	if err == nil || !strings.Contains(err.Error(), "--ssh default") {
		t.Errorf("ssh source without an agent: %v", err)
	}
}

// fileMode is the permission bits of an entry of the flattened image.
func fileMode(t *testing.T, img v1.Image, p string) int64 {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in the image: %v", p, err)
		}
		if strings.TrimPrefix(hdr.Name, "/") == p {
			return hdr.Mode & 0o7777
		}
	}
}
