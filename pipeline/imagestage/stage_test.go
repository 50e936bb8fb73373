package imagestage_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/executor"
	"github.com/kilnbuild/kiln/internal/testenv"
	"github.com/kilnbuild/kiln/pipeline/imagestage"
	"github.com/kilnbuild/kiln/pipeline/spec"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("directory-mode builds need root (mount and pid namespaces, chroot); not root here")
	}
}

// workspace writes what the build stage would leave: the app's Dockerfile and its compiled
// output under out/.
func workspace(t *testing.T, base string) string {
	t.Helper()
	ws := t.TempDir()
	for p, content := range map[string]string{
		"Dockerfile": "FROM " + base + "\n" +
			"RUN mkdir -p /data && chown nobody /data && echo RAN-THE-RUN\n" +
			"COPY out/ /app/\n" +
			"USER nobody\nEXPOSE 8080\nENTRYPOINT [\"/app/hello\"]\n",
		"out/hello": "#!/bin/sh\necho 'Hello, World! v1.0'\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(ws, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ws, p), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return ws
}

// events collects what the stage reports.
type events struct {
	mu   sync.Mutex
	list []builder.Event
}

func (e *events) Report(ev builder.Event) { e.mu.Lock(); e.list = append(e.list, ev); e.mu.Unlock() }

func (e *events) count(kind builder.EventKind) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.list {
		if ev.Kind == kind {
			n++
		}
	}
	return n
}

func layerDigests(t *testing.T, reg *testenv.Registry, ref string) []v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, reg.RemoteOptions()...)
	if err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []v1.Hash
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// TestImageStageCachesAcrossBuilds runs the stage twice, as two pipeline runs with build
// numbers 1 and 2 would, against a registry that requires the credentials of a config.json:
// the first build misses the cache and runs the RUN, the second takes both the RUN and the COPY
// from the cache (the RUN does not run) and pushes an image with the same layers.
func TestImageStageCachesAcrossBuilds(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Auth: true})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	ws := workspace(t, base)
	dockerConfig := filepath.Dir(reg.DockerConfig(t))
	image := func(build string) *spec.Image {
		return &spec.Image{Destinations: []string{reg.Ref("team/hello:" + build)}, Cache: true,
			CacheRepo: reg.Ref("team/kaniko-cache"), CacheCopyLayers: true, Flags: []string{"--insecure", "--insecure-pull"}}
	}
	// run builds with events going to o.Reporter when set, else rendered by the log.
	run := func(build string, o imagestage.Options) (imagestage.Result, string, string) {
		t.Helper()
		var out, logs bytes.Buffer
		log, err := executor.NewLogger(&logs, "text", "info", false)
		if err != nil {
			t.Fatal(err)
		}
		o.Workspace, o.Output, o.Log = ws, &out, log
		res, err := imagestage.Run(t.Context(), image(build), o)
		if err != nil {
			t.Fatalf("build %s: %v\n%s\nRUN output:\n%s", build, err, logs.String(), out.String())
		}
		return res, out.String(), logs.String()
	}

	workDir := filepath.Join(t.TempDir(), "stage")
	ev := &events{}
	first, out1, _ := run("1", imagestage.Options{DockerConfig: dockerConfig, WorkDir: workDir, Reporter: ev})
	if !strings.Contains(out1, "RAN-THE-RUN") {
		t.Errorf("first build: the RUN did not run; output:\n%s", out1)
	}
	if first.CacheHits != 0 || first.CacheMisses != 2 || first.Steps != 5 {
		t.Errorf("first build: %d steps, %d hits, %d misses; want 5 steps, 0 hits, 2 misses (RUN, COPY)", first.Steps, first.CacheHits, first.CacheMisses)
	}
	if want := []string{reg.Ref("team/hello:1")}; !reflect.DeepEqual(first.Destinations, want) {
		t.Errorf("destinations %q, want %q", first.Destinations, want)
	}
	if ev.count(builder.EventStep) != 5 || ev.count(builder.EventCacheMiss) != 2 {
		t.Errorf("Reporter saw %d steps and %d misses, want 5 and 2", ev.count(builder.EventStep), ev.count(builder.EventCacheMiss))
	}
	for _, p := range []string{"rootfs", "work"} {
		if _, err := os.Stat(filepath.Join(workDir, p)); !os.IsNotExist(err) {
			t.Errorf("work dir %s left behind: %v", p, err)
		}
	}

	// Build 2 reads the same credentials through DOCKER_CONFIG, as the executor in a pod does.
	t.Setenv("DOCKER_CONFIG", dockerConfig)
	second, out2, logs2 := run("2", imagestage.Options{})
	if strings.Contains(out2, "RAN-THE-RUN") {
		t.Errorf("second build ran the RUN despite the cache; output:\n%s", out2)
	}
	if second.CacheHits != 2 || second.CacheMisses != 0 {
		t.Errorf("second build: %d hits, %d misses; want every cacheable step (2) from the cache", second.CacheHits, second.CacheMisses)
	}
	// Without a Reporter the log shows every step and cache answer, then the stage's duration.
	for _, want := range []string{"] [1/5] cache hit for key ", "] [2/5] cache hit for key ", "] [5/5] ENTRYPOINT",
		"Pushed " + second.Digest.String(), "Image stage done in "} {
		if !strings.Contains(logs2, want) {
			t.Errorf("second build's log lacks %q:\n%s", want, logs2)
		}
	}
	l1, l2 := layerDigests(t, reg, reg.Ref("team/hello:1")), layerDigests(t, reg, reg.Ref("team/hello:2"))
	if len(l1) != 3 || !reflect.DeepEqual(l1, l2) {
		t.Errorf("layers differ or are not base+RUN+COPY:\n build 1 %v\n build 2 %v", l1, l2)
	}
	cfg := testenv.Config(t, reg, reg.Ref("team/hello:2"))
	if cfg.Config.User != "nobody" || !reflect.DeepEqual(cfg.Config.Entrypoint, []string{"/app/hello"}) {
		b, _ := json.Marshal(cfg.Config)
		t.Errorf("build 2 config: %s", b)
	}
}

// TestImageStageRegistryRefusesAuth: wrong credentials fail the stage before any build, naming
// the registry and its answer.
func TestImageStageRegistryRefusesAuth(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Auth: true})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	ws := workspace(t, base)
	dir := t.TempDir()
	cfg := `{"auths":{"` + reg.Addr + `":{"username":"kiln","password":"wrong"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	img := &spec.Image{Destinations: []string{reg.Ref("team/hello:1")}, Flags: []string{"--insecure", "--insecure-pull"}}
	_, err := imagestage.Run(t.Context(), img, imagestage.Options{Workspace: ws, DockerConfig: dir, Output: &out})
	if err == nil || !strings.Contains(err.Error(), "registry "+reg.Addr) || !strings.Contains(err.Error(), "unauthorized") {
		t.Fatalf("err = %v, want the registry %s named as refusing", err, reg.Addr)
	}
	if strings.Contains(out.String(), "RAN-THE-RUN") {
		t.Errorf("the build ran although the push would be refused")
	}
}
