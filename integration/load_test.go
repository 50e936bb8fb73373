package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/cache"
	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/internal/testenv"
	"github.com/kilnbuild/kiln/registry"
)

// loadDockerfiles are the builds the load tests mix: RUN only, COPY with owners, multi-stage,
// and metadata with a user. N is each build's own number, so that every image differs.
var loadDockerfiles = []struct{ name, text string }{
	{"run", `ARG BASE
FROM ${BASE}
ARG N
RUN mkdir -p /out && echo "build $N" > /out/n && for i in 1 2 3 4 5; do echo "$N-$i" > /out/f$i; done && ln -s n /out/link
RUN rm /out/f5 && chmod 600 /out/f1 && mkdir -p /out/deep/a/b && echo deep > /out/deep/a/b/c
`},
	{"copy", `ARG BASE
FROM ${BASE}
ARG N
COPY app/ /app/
COPY --chown=1000:1000 conf.txt /etc/app.conf
WORKDIR /app
RUN cat /etc/app.conf data.txt > combined && echo "$N" > n
`},
	{"multistage", `ARG BASE
FROM ${BASE} AS gen
ARG N
RUN mkdir /gen && seq 1 200 | sed "s/^/$N:/" > /gen/list
FROM ${BASE} AS other
RUN echo other > /other
FROM ${BASE}
COPY --from=gen /gen/list /list
COPY --from=other /other /other
RUN wc -l < /list > /count
`},
	{"user", `ARG BASE
FROM ${BASE}
ARG N
ENV N=$N
LABEL build=$N
WORKDIR /home/u
COPY --chown=1000:1000 app/data.txt ./data
USER 1000:1000
RUN echo "$N as $(id -u)" >> /home/u/data
USER root
RUN chown -R 1000:1000 /home/u
`},
}

// loadContext writes build n's context: the files every Dockerfile of loadDockerfiles uses.
func loadContext(t *testing.T, n int) string {
	return writeContext(t, map[string]string{
		"app/data.txt":     fmt.Sprintf("data of build %d\n", n),
		"app/sub/file.txt": strings.Repeat(fmt.Sprintf("line of build %d\n", n), 100),
		"conf.txt":         "conf\n",
	})
}

// libraryLoadBuild is one builder.Build call of TestLoadLibraryBuilds.
type libraryLoadBuild struct {
	n        int
	kind     string
	src      dockerfile.Source
	ctxDir   string
	base     string
	pullOpts []registry.Option
}

// TestLoadLibraryBuilds runs twenty builder.Build calls at once in this process, in directory
// mode, each with its own root, work dir and context, mixing RUN, COPY and multi-stage
// Dockerfiles, pulling their base from a plain and from a TLS registry (with its CA), and
// sharing one base-image cache and one layer cache (an OCI layout) per run. The same builds run
// first one after the other: every concurrent build must succeed with the digest of its
// sequential twin (all are reproducible). After the concurrent builds, the process must hold
// no more file descriptors and goroutines than before them. CI runs it with -race.
func TestLoadLibraryBuilds(t *testing.T) {
	requireRoot(t)
	const builds = 20
	plain := testenv.StartRegistry(t, testenv.RegistryOptions{})
	secure := testenv.StartRegistry(t, testenv.RegistryOptions{TLS: true})
	plainBase := testenv.PushBusybox(t, plain, "base/busybox:latest")
	secureBase := testenv.PushBusybox(t, secure, "base/busybox:latest")

	specs := make([]libraryLoadBuild, builds)
	for i := range specs {
		df := loadDockerfiles[i%len(loadDockerfiles)]
		b := libraryLoadBuild{n: i, kind: df.name, src: dockerfile.Source{Name: "Dockerfile", Data: []byte(df.text)},
			ctxDir: loadContext(t, i), base: plainBase, pullOpts: []registry.Option{registry.WithInsecureAll(true)}}
		if i%5 == 4 { // one in five from the TLS registry, through a transport of its own
			b.base = secureBase
			b.pullOpts = []registry.Option{registry.WithRegistryCertificate(secure.Addr, secure.CAFile)}
		}
		specs[i] = b
	}

	start := time.Now()
	seq := runLibraryLoad(t, specs, false)
	seqTime := time.Since(start)
	for i, r := range seq {
		if r.err != nil {
			t.Fatalf("sequential build %d (%s): %v\n%s", i, specs[i].kind, r.err, r.out)
		}
	}
	t.Logf("timing: %d builds one after the other in %s", builds, seqTime.Round(time.Millisecond))
	checkLibraryLoadImages(t, specs, seq)

	// Idle connections of go-containerregistry's shared transport are a pool kept for the
	// process (up to 50 per registry, 90 s), not a leak of one build: closed before both counts.
	closeIdle := func() { remote.DefaultTransport.(interface{ CloseIdleConnections() }).CloseIdleConnections() }
	closeIdle()
	before := testenv.TakeProcState(t)
	start = time.Now()
	par := runLibraryLoad(t, specs, true)
	parTime := time.Since(start)
	t.Logf("timing: the same %d builds at once in %s", builds, parTime.Round(time.Millisecond))
	for i, r := range par {
		switch {
		case r.err != nil:
			t.Errorf("concurrent build %d (%s): %v\n%s", i, specs[i].kind, r.err, r.out)
		case r.digest != seq[i].digest:
			t.Errorf("concurrent build %d (%s) made %s, the sequential run %s", i, specs[i].kind, r.digest, seq[i].digest)
		}
	}
	if idle := len(testenv.TakeProcState(t).FDs) - len(before.FDs); idle > 0 {
		t.Logf("%d more descriptors right after the builds (idle pooled connections among them)", idle)
	}
	par = nil // the images hold nothing open; drop them anyway before counting
	closeIdle()
	after := before.NoLeaks(t, 10*time.Second, 0)
	t.Logf("after the concurrent builds: %d file descriptors (%d before), %d goroutines (%d before)",
		len(after.FDs), len(before.FDs), after.Goroutines, before.Goroutines)
}

// libraryLoadResult is the outcome of one build of a load run.
type libraryLoadResult struct {
	digest string
	err    error
	out    string
	files  map[string]string
}

// runLibraryLoad runs every build of specs, all at once or one after the other, each in a new
// root and work dir, with one base-image cache and one layer cache for the whole run.
func runLibraryLoad(t *testing.T, specs []libraryLoadBuild, concurrent bool) []libraryLoadResult {
	t.Helper()
	shared := t.TempDir()
	baseCache := cache.NewBaseCache(filepath.Join(shared, "base"))
	layers := cache.NewLayoutStore(filepath.Join(shared, "layers"))
	results := make([]libraryLoadResult, len(specs))
	var wg sync.WaitGroup
	for i, sp := range specs {
		run := func() {
			defer wg.Done()
			dir := t.TempDir()
			var out syncBuffer
			n := fmt.Sprint(sp.n)
			img, err := builder.Build(context.Background(), sp.src,
				builder.WithDirectoryRoot(filepath.Join(dir, "root")),
				builder.WithWorkDir(filepath.Join(dir, "work")),
				builder.WithContextDir(sp.ctxDir),
				builder.WithBuildArgs(dockerfile.BuildArgs{"BASE": &sp.base, "N": &n}),
				builder.WithPullOptions(sp.pullOpts...),
				builder.WithReproducible(true),
				builder.WithBaseImageCache(baseCache),
				builder.WithCache(layers),
				builder.WithOutput(&out))
			r := &results[i]
			r.out, r.err = out.String(), err
			if err != nil {
				return
			}
			d, err := img.Digest()
			if err != nil {
				r.err = fmt.Errorf("digest: %w", err)
				return
			}
			r.digest = d.String()
			if !concurrent {
				r.files = exportImage(t, img)
			}
		}
		wg.Add(1)
		if concurrent {
			go run()
		} else {
			run()
		}
	}
	wg.Wait()
	return results
}

// checkLibraryLoadImages checks what each kind of build put in its image (the digests of the
// concurrent run are compared with these).
func checkLibraryLoadImages(t *testing.T, specs []libraryLoadBuild, res []libraryLoadResult) {
	t.Helper()
	seen := map[string]int{}
	for i, sp := range specs {
		if j, dup := seen[res[i].digest]; dup {
			t.Errorf("builds %d and %d made the same image %s", j, i, res[i].digest)
		}
		seen[res[i].digest] = i
		f := res[i].files
		var want map[string]string
		switch sp.kind {
		case "run":
			want = map[string]string{"out/n": fmt.Sprintf("build %d\n", i), "out/f4": fmt.Sprintf("%d-4\n", i), "out/deep/a/b/c": "deep\n"}
			if _, ok := f["out/f5"]; ok {
				t.Errorf("build %d: /out/f5 was removed, yet it is in the image", i)
			}
		case "copy":
			want = map[string]string{"app/combined": fmt.Sprintf("conf\ndata of build %d\n", i), "app/n": fmt.Sprintf("%d\n", i)}
		case "multistage":
			want = map[string]string{"count": "200\n", "other": "other\n"}
			if !strings.HasPrefix(f["list"], fmt.Sprintf("%d:1\n%d:2\n", i, i)) {
				t.Errorf("build %d: /list starts %.20q", i, f["list"])
			}
		case "user":
			want = map[string]string{"home/u/data": fmt.Sprintf("data of build %d\n%d as 1000\n", i, i)}
		}
		for p, content := range want {
			if got, ok := f[p]; !ok || got != content {
				t.Errorf("build %d (%s): /%s = %q (present %v), want %q", i, sp.kind, p, got, ok, content)
			}
		}
	}
}
