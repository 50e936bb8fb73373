package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/kilnbuild/kiln/executor"
	"github.com/kilnbuild/kiln/internal/testenv"
)

// The RUN --mount and --network tests run every Dockerfile twice: with the executor binary as
// a build pod (pod mode, RUN in the pod's root) and with the executor library into a directory
// root (directory mode, RUN chrooted in its own namespaces), with the same flags. Where the
// emulation of mounts holds the same promises, a third time: as a build pod without
// CAP_SYS_ADMIN (emulatedMode), as clusters run build pods.

// buildMode is one way of running the executor.
type buildMode struct {
	name string
	pod  bool
	// noSysAdmin runs the pod without CAP_SYS_ADMIN: its RUN mounts are emulated.
	noSysAdmin bool
}

var buildModes = []buildMode{{name: "pod", pod: true}, {name: "directory"}}

// emulatedMode is a build pod without CAP_SYS_ADMIN.
var emulatedMode = buildMode{name: "pod-nosysadmin", pod: true, noSysAdmin: true}

// emulationWarning is what the log of a build with emulated mounts says once.
const emulationWarning = "cannot create a mount namespace"

// mountBuild is one executor run.
type mountBuild struct {
	ctx     string   // host context directory
	cache   string   // host directory for --cache-dir {cache} ("" : none)
	secrets string   // host directory of secret files and agent sockets, {secrets} ("" : none)
	env     []string // the executor's environment, KEY=VALUE
	// dropSysAdmin runs the pod without CAP_SYS_ADMIN, as real clusters run build pods.
	dropSysAdmin bool
	// args are the flags; {ctx}, {cache} and {secrets} stand for those directories as the
	// build sees them.
	args []string
}

// buildResult is what a run left: its whole log, exit code and the directories it built in.
type buildResult struct {
	log  string
	code int
	dirs []string // pod: the pod root; directory mode: the root and the work dir
}

// run runs the executor in this mode.
func (m buildMode) run(t *testing.T, b mountBuild) buildResult {
	t.Helper()
	if m.pod {
		b.dropSysAdmin = b.dropSysAdmin || m.noSysAdmin
		return runMountPod(t, b)
	}
	return runMountDir(t, b)
}

func runMountPod(t *testing.T, b mountBuild) buildResult {
	t.Helper()
	mounts := map[string]string{}
	if b.cache != "" {
		mounts["/cache"] = b.cache
	}
	if b.secrets != "" {
		mounts["/secrets"] = b.secrets
	}
	p := testenv.Pod{Executor: testenv.BuildExecutor(t), Context: b.ctx, Env: b.env, Mounts: mounts,
		Args: append([]string{"--force", "--context", "dir:///workspace", "--log-format", "text"},
			expandPaths(b.args, "/workspace", "/cache", "/secrets")...)}
	if b.dropSysAdmin {
		p.DropCaps = []string{"sys_admin"}
	}
	res := testenv.RunPod(t, p)
	return buildResult{log: res.Stdout + res.Stderr, code: res.ExitCode, dirs: []string{res.Root}}
}

func runMountDir(t *testing.T, b mountBuild) buildResult {
	t.Helper()
	args := append([]string{"--context", "dir://" + b.ctx, "--log-format", "text"},
		expandPaths(b.args, b.ctx, b.cache, b.secrets)...)
	cfg, err := executor.ParseFlags(args)
	if err != nil {
		t.Fatalf("flags %q: %v", args, err)
	}
	out := &mountLog{}
	log, err := executor.NewLogger(out, "text", "info", false)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range b.env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	dir := t.TempDir()
	root, work := filepath.Join(dir, "root"), filepath.Join(dir, "work")
	res := buildResult{dirs: []string{root, work}}
	_, err = executor.Run(context.Background(), cfg, executor.WithDirectoryRoot(root), executor.WithWorkDir(work),
		executor.WithLogger(log), executor.WithOutput(out),
		executor.WithLookupEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	if err != nil {
		fmt.Fprintf(out, "error: %v\n", err)
		res.code = 1
	}
	res.log = out.String()
	return res
}

// expandPaths replaces {ctx}, {cache} and {secrets} in args.
func expandPaths(args []string, ctx, cache, secrets string) []string {
	r := strings.NewReplacer("{ctx}", ctx, "{cache}", cache, "{secrets}", secrets)
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = r.Replace(a)
	}
	return out
}

// mountLog is a log buffer that RUN output and the logger write concurrently.
type mountLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *mountLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *mountLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// wantOK fails the test when a build failed.
func wantOK(t *testing.T, r buildResult) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("build failed (exit %d):\n%s", r.code, r.log)
	}
}

// wantFailure fails the test unless the build failed with every one of msgs in its log.
func wantFailure(t *testing.T, r buildResult, msgs ...string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("build succeeded, want a failure:\n%s", r.log)
	}
	for _, m := range msgs {
		if !strings.Contains(r.log, m) {
			t.Errorf("the failure does not say %q:\n%s", m, r.log)
		}
	}
}

// layerEntries lists the entries (directories too) of each layer of img.
func layerEntries(t *testing.T, img v1.Image) [][]string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]string, len(layers))
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			out[i] = append(out[i], strings.Trim(filepath.Clean("/"+hdr.Name), "/"))
		}
		rc.Close()
	}
	return out
}

// noLayerHas fails the test when an entry of any layer is one of paths or lies below one.
func noLayerHas(t *testing.T, img v1.Image, paths ...string) {
	t.Helper()
	for i, entries := range layerEntries(t, img) {
		for _, e := range entries {
			for _, p := range paths {
				if e == p || strings.HasPrefix(e, p+"/") {
					t.Errorf("layer %d holds %s: a mount left a trace", i, e)
				}
			}
		}
	}
}

// contextWith writes a context with the Dockerfile and files.
func contextWith(t *testing.T, dockerfile string, files map[string]string) string {
	t.Helper()
	all := map[string]string{"Dockerfile": dockerfile}
	for k, v := range files {
		all[k] = v
	}
	return writeContext(t, all)
}

// TestMountCacheSurvivesBuilds: a cache mount's directory lives in --cache-dir (a pod's
// volume), so a second build on the same volume finds what the first wrote, and nothing of the
// mount (its content, its mount point or the directories above it) is in any layer. In a pod
// without CAP_SYS_ADMIN the same holds, the RUN seeing a symlink into the volume (another file
// system) instead of a mount.
func TestMountCacheSurvivesBuilds(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	// /seen: the count, and what the RUN found at the target (a directory, or a link).
	df := `ARG BASE
FROM ${BASE}
RUN --mount=type=cache,target=/var/cache/app sh -c 'n=$(cat /var/cache/app/count 2>/dev/null || echo 0); echo $((n+1)) > /var/cache/app/count; k=dir; [ -L /var/cache/app ] && k=link; echo "$((n+1)) $k" > /seen'
`
	for _, mode := range append(buildModes, emulatedMode) {
		t.Run(mode.name, func(t *testing.T) {
			ctx := contextWith(t, df, nil)
			cacheDir := t.TempDir()
			ref := reg.Ref("it/cachemount-" + mode.name + ":latest")
			for n := 1; n <= 2; n++ {
				r := mode.run(t, mountBuild{ctx: ctx, cache: cacheDir, args: []string{"--build-arg", "BASE=" + base,
					"--destination", ref, "--insecure", "--insecure-pull", "--cache-dir", "{cache}"}})
				wantOK(t, r)
				kind := "dir"
				if mode.noSysAdmin {
					kind = "link"
					wantEmulated(t, r, "Dockerfile:3", "cache /var/cache/app")
				}
				if e := file(t, testenv.ExportImage(t, reg, ref), "seen"); string(e.Content) != strconv.Itoa(n)+" "+kind+"\n" {
					t.Fatalf("build %d: /seen = %q, want %d %s: the cache did not carry the count over", n, e.Content, n, kind)
				}
				img := pull(t, reg, ref)
				noLayerHas(t, img, "var/cache", "var")
				entries := layerEntries(t, img)
				if last := entries[len(entries)-1]; strings.Join(last, " ") != "seen" {
					t.Errorf("build %d: the RUN's layer holds %v, want only seen", n, last)
				}
			}
			counts, _ := filepath.Glob(filepath.Join(cacheDir, "mounts", "var_cache_app-*", "count"))
			if len(counts) != 1 || readFile(t, counts[0]) != "2\n" {
				t.Errorf("--cache-dir holds %v, want one cache with count 2", counts)
			}
		})
	}
	// A --cache-dir that is no volume would be snapshotted: the caches go to the executor's
	// own directory instead, for this pod only, and the log says so. Without CAP_SYS_ADMIN that
	// directory is on the root's file system, so the RUN gets the cache directory itself,
	// renamed to the target and back.
	for _, mode := range []buildMode{buildModes[0], emulatedMode} {
		t.Run(mode.name+" without a cache volume", func(t *testing.T) {
			ref := reg.Ref("it/cachemount-novolume-" + mode.name + ":latest")
			r := mode.run(t, mountBuild{ctx: contextWith(t, df, nil), args: []string{"--build-arg", "BASE=" + base,
				"--destination", ref, "--insecure", "--insecure-pull", "--cache-dir", "/novolume"}})
			wantOK(t, r)
			if !strings.Contains(r.log, "/novolume/mounts is not a mounted volume") {
				t.Errorf("no warning about the cache directory:\n%s", r.log)
			}
			if e := file(t, testenv.ExportImage(t, reg, ref), "seen"); string(e.Content) != "1 dir\n" {
				t.Errorf("/seen = %q, want 1 dir", e.Content)
			}
			img := pull(t, reg, ref)
			noLayerHas(t, img, "novolume", "kaniko", "var")
			entries := layerEntries(t, img)
			if last := entries[len(entries)-1]; strings.Join(last, " ") != "seen" {
				t.Errorf("the RUN's layer holds %v, want only seen", last)
			}
		})
	}
}

// wantEmulated fails the test unless the log says once that mounts are emulated, naming the
// line and each of what.
func wantEmulated(t *testing.T, r buildResult, what ...string) {
	t.Helper()
	if n := strings.Count(r.log, emulationWarning); n != 1 {
		t.Errorf("the log says %d times that mounts are emulated, want once:\n%s", n, r.log)
	}
	for _, w := range what {
		if !strings.Contains(r.log, w) {
			t.Errorf("the emulation warning does not name %q:\n%s", w, r.log)
		}
	}
}

// TestMountCacheLockedSerializes: two builds run at once on one cache volume. A first RUN with
// a shared cache mount makes them meet (both must be inside it together, which shared allows),
// so that both reach the next RUN, with sharing=locked, at the same moment: one waits, says
// so, and the times each wrote inside the cache do not overlap. Pods without CAP_SYS_ADMIN
// (their caches emulated) lock the same way.
func TestMountCacheLockedSerializes(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	df := `ARG BASE
FROM ${BASE}
ARG WHO
COPY meet.sh lock.sh /
RUN --mount=type=cache,target=/meet,id=meet sh /meet.sh
RUN --mount=type=cache,target=/c,id=lock,sharing=locked sh /lock.sh
`
	meet := `echo ready > /meet/$WHO
i=0
while [ ! -e /meet/a ] || [ ! -e /meet/b ]; do
	i=$((i+1)); [ $i -gt 2400 ] && echo "never met" && exit 3
	sleep 0.05
done
`
	lock := `echo "$WHO start $(cut -d' ' -f1 /proc/uptime)" >> /c/log
sleep 2
echo "$WHO end $(cut -d' ' -f1 /proc/uptime)" >> /c/log
`
	for _, mode := range append(buildModes, emulatedMode) {
		t.Run(mode.name, func(t *testing.T) {
			cacheDir := t.TempDir()
			results := map[string]buildResult{}
			var mu sync.Mutex
			t.Run("both", func(t *testing.T) {
				for _, who := range []string{"a", "b"} {
					t.Run(who, func(t *testing.T) {
						t.Parallel()
						ctx := contextWith(t, df, map[string]string{"meet.sh": meet, "lock.sh": lock})
						r := mode.run(t, mountBuild{ctx: ctx, cache: cacheDir, args: []string{"--build-arg", "BASE=" + base,
							"--build-arg", "WHO=" + who, "--no-push", "--insecure-pull", "--cache-dir", "{cache}"}})
						wantOK(t, r)
						mu.Lock()
						results[who] = r
						mu.Unlock()
					})
				}
			})
			if t.Failed() {
				return
			}
			waited := 0
			for _, r := range results {
				if strings.Contains(r.log, "waiting for cache mount id=lock (sharing=locked)") {
					waited++
				}
			}
			if waited != 1 {
				t.Errorf("%d builds logged waiting for the locked cache, want 1:\n%s\n%s", waited, results["a"].log, results["b"].log)
			}
			logs, _ := filepath.Glob(filepath.Join(cacheDir, "mounts", "lock-*", "log"))
			if len(logs) != 1 {
				t.Fatalf("cache logs %v", logs)
			}
			spans := lockSpans(t, readFile(t, logs[0]))
			a, b := spans["a"], spans["b"]
			if !(a[1] <= b[0] || b[1] <= a[0]) {
				t.Errorf("the locked RUNs overlapped: a %v, b %v", a, b)
			}
		})
	}
}

// lockSpans reads "WHO start|end UPTIME" lines into WHO -> [start, end].
func lockSpans(t *testing.T, log string) map[string][2]float64 {
	t.Helper()
	spans := map[string][2]float64{}
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("cache log line %q", line)
		}
		v, err := strconv.ParseFloat(f[2], 64)
		if err != nil {
			t.Fatal(err)
		}
		s := spans[f[0]]
		if f[1] == "start" {
			s[0] = v
		} else {
			s[1] = v
		}
		spans[f[0]] = s
	}
	if len(spans) != 2 {
		t.Fatalf("cache log %q: want spans of a and b", log)
	}
	return spans
}

const secretDockerfile = `ARG BASE
FROM ${BASE}
RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -d' ' -f1 > /tok.sha
RUN --mount=type=secret,id=tok,env=TOK,target=/etc/tok.conf,mode=0440,uid=7 sh -c 'printf %s "$TOK" | sha256sum | cut -d" " -f1 > /env.sha; stat -c "%a %u" /etc/tok.conf > /tokconf.stat'
RUN test ! -e /run/secrets/tok && test ! -e /etc/tok.conf && test -z "$TOK" && echo gone > /gone
`

// TestSecretNeverStored: RUN reads a secret as a file and as a variable; the secret is then
// searched for in every blob of the image (layers unpacked, the config with its history), of
// the layer cache, in the whole log and in every file the build left, and found nowhere. A
// second build with another value hits the cache (the secret is no input of a key).
//
// A pod without CAP_SYS_ADMIN writes the secret's file at its target for the RUN (so its
// value passes through the container's writable layer, which the log says) and removes it
// before the snapshot: the same searches find it nowhere.
func TestSecretNeverStored(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	for _, mode := range append(buildModes, emulatedMode) {
		t.Run(mode.name, func(t *testing.T) {
			ctx := contextWith(t, secretDockerfile, nil)
			secrets, cacheDir := t.TempDir(), t.TempDir()
			build := func(secret string) buildResult {
				t.Helper()
				if err := os.WriteFile(filepath.Join(secrets, "tok"), []byte(secret), 0o600); err != nil {
					t.Fatal(err)
				}
				os.RemoveAll(filepath.Join(ctx, "image"))
				r := mode.run(t, mountBuild{ctx: ctx, cache: cacheDir, secrets: secrets, args: []string{
					"--build-arg", "BASE=" + base, "--insecure-pull", "--no-push", "--secret", "id=tok,src={secrets}/tok",
					"--cache=true", "--cache-repo", "oci:{ctx}/cachelayout", "--cache-dir", "{cache}",
					"--oci-layout-path", "{ctx}/image"}})
				wantOK(t, r)
				for _, d := range append(r.dirs, ctx, cacheDir) {
					noSecretIn(t, d, secret, filepath.Join(r.dirs[0], "secrets"))
				}
				if strings.Contains(r.log, secret) {
					t.Errorf("the log shows the secret:\n%s", r.log)
				}
				return r
			}
			first := "kiln-secret-" + mode.name + "-4f1c9a"
			r := build(first)
			if mode.noSysAdmin {
				wantEmulated(t, r, "Dockerfile:3", "secret id=tok: a file written at /run/secrets/tok")
				if !strings.Contains(r.log, "writable layer") {
					t.Errorf("no warning that the secret passes through the writable layer:\n%s", r.log)
				}
			}
			files := layoutFiles(t, filepath.Join(ctx, "image"))
			sum := sha256.Sum256([]byte(first))
			want := hex.EncodeToString(sum[:]) + "\n"
			for _, f := range []string{"tok.sha", "env.sha"} {
				if files[f] != want {
					t.Errorf("/%s = %q: the RUN did not read the secret", f, files[f])
				}
			}
			if files["tokconf.stat"] != "440 7\n" || files["gone"] != "gone\n" {
				t.Errorf("/tokconf.stat %q, /gone %q", files["tokconf.stat"], files["gone"])
			}
			noLayerHas(t, layoutImage(t, filepath.Join(ctx, "image")), "run", "etc/tok.conf")

			second := build("kiln-secret-" + mode.name + "-second-77d2")
			if n := strings.Count(second.log, "cache hit"); n != 3 {
				t.Errorf("%d cache hits with another secret value, want 3:\n%s", n, second.log)
			}
		})
	}
	t.Run("required and missing", func(t *testing.T) {
		ctx := contextWith(t, "ARG BASE\nFROM ${BASE}\nRUN --mount=type=secret,id=absent,required true\n", nil)
		r := runMountDir(t, mountBuild{ctx: ctx, cache: t.TempDir(), args: []string{"--build-arg", "BASE=" + base,
			"--insecure-pull", "--no-push", "--cache-dir", "{cache}"}})
		wantFailure(t, r, "Dockerfile:3", "secret id=absent is required but was not given")
	})
	// A secret only given as a variable needs no emulation, and no warning.
	t.Run("pod without CAP_SYS_ADMIN, env only", func(t *testing.T) {
		df := `ARG BASE
FROM ${BASE}
RUN --mount=type=secret,id=tok,env=TOK sh -c 'test -n "$TOK" && echo env-secret-ok'
`
		ctx := contextWith(t, df, nil)
		r := runMountPod(t, mountBuild{ctx: ctx, cache: t.TempDir(), env: []string{"TOKEN_VAR=pod-secret-6d0e"},
			dropSysAdmin: true, args: []string{"--build-arg", "BASE=" + base, "--insecure-pull", "--no-push",
				"--cache-dir", "{cache}", "--secret", "id=tok,env=TOKEN_VAR"}})
		wantOK(t, r)
		if !strings.Contains(r.log, "env-secret-ok") || strings.Contains(r.log, "writable layer") {
			t.Errorf("the RUN did not see the variable, or the log warns about a file:\n%s", r.log)
		}
		if strings.Contains(r.log, "pod-secret-6d0e") {
			t.Errorf("the log shows the secret:\n%s", r.log)
		}
	})
}

// noSecretIn fails the test when a file below dir (gzip blobs unpacked) holds secret. skip is
// a directory not searched (the secret's own source).
func noSecretIn(t *testing.T, dir, secret, skip string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a vanished temp file
		}
		if d.IsDir() {
			if p == skip || p == filepath.Join(dir, "proc") || p == filepath.Join(dir, "sys") || p == filepath.Join(dir, "dev") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		if zr, err := gzip.NewReader(bytes.NewReader(data)); err == nil {
			if plain, err := io.ReadAll(zr); err == nil {
				data = append(data, plain...)
			}
		}
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("%s holds the secret", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// layoutImage is the one image of the OCI layout at dir.
func layoutImage(t *testing.T, dir string) v1.Image {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) == 0 {
		t.Fatalf("layout %s: %v", dir, err)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// layoutFiles flattens the image of the OCI layout at dir into path -> content.
func layoutFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	return exportImage(t, layoutImage(t, dir))
}

// TestMountBindAndTmpfs: bind mounts of an earlier stage (read-only; with rw, writes that are
// discarded), of the build context (without what .dockerignore excludes) and of an image, and tmpfs mounts
// (empty every time, size-limited); none leaves a trace in the image.
func TestMountBindAndTmpfs(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	df := `ARG BASE
FROM ${BASE} AS tools
RUN mkdir -p /out && echo tool-v1 > /out/tool.txt
FROM ${BASE}
RUN --mount=type=bind,from=tools,source=/out,target=/mnt/tools sh -c 'cat /mnt/tools/tool.txt > /got; (echo x > /mnt/tools/new) 2>/dev/null && echo writable > /ro || echo read-only > /ro'
RUN --mount=type=bind,from=tools,source=out,target=/mnt/tools,rw sh -c 'echo changed > /mnt/tools/tool.txt && cat /mnt/tools/tool.txt > /rw'
RUN --mount=type=bind,from=tools,source=/out,target=/mnt/tools cat /mnt/tools/tool.txt > /after
RUN --mount=type=bind,source=data,target=/ctx sh -c 'cat /ctx/file > /fromctx; ls /ctx > /ctxlist'
RUN --mount=type=bind,from=BASEREF,source=/etc,target=/img cp /img/group /imggroup
RUN --mount=type=tmpfs,target=/scratch sh -c 'test -z "$(ls -A /scratch)" && echo one > /scratch/f && grep -q " /scratch tmpfs " /proc/self/mounts && echo ok > /t1'
RUN --mount=type=tmpfs,target=/scratch,size=1m sh -c 'test -z "$(ls -A /scratch)" && echo ok > /t2; dd if=/dev/zero of=/scratch/big bs=1k count=2048 2>/dev/null && echo unlimited > /t3 || echo limited > /t3'
`
	for _, mode := range buildModes {
		t.Run(mode.name, func(t *testing.T) {
			ctx := contextWith(t, strings.ReplaceAll(df, "BASEREF", base), map[string]string{"data/file": "from the context\n", "data/notes.tmp": "ignored\n",
				".dockerignore": "**/*.tmp\n"})
			ref := reg.Ref("it/bindmount-" + mode.name + ":latest")
			wantOK(t, mode.run(t, mountBuild{ctx: ctx, cache: t.TempDir(), args: []string{"--build-arg", "BASE=" + base,
				"--destination", ref, "--insecure", "--insecure-pull", "--cache-dir", "{cache}"}}))
			fs := testenv.ExportImage(t, reg, ref)
			for p, want := range map[string]string{"got": "tool-v1\n", "ro": "read-only\n", "rw": "changed\n",
				"after": "tool-v1\n", "fromctx": "from the context\n", "ctxlist": "file\n", "t1": "ok\n", "t2": "ok\n", "t3": "limited\n",
				"imggroup": "root:x:0:\nnobody:x:65534:\n"} {
				if got := string(file(t, fs, p).Content); got != want {
					t.Errorf("/%s = %q, want %q", p, got, want)
				}
			}
			noLayerHas(t, pull(t, reg, ref), "mnt", "ctx", "scratch", "img")
		})
	}
}

// TestMountEmulatedWithoutSysAdmin: in a build pod without CAP_SYS_ADMIN, bind mounts (of a
// stage, read-only or rw; of the context without what .dockerignore excludes; of one file) are
// copies whose writes are discarded, a tmpfs is an empty directory, and a tmpfs or cache over
// an existing directory hides it for the RUN only; nothing of them is in any layer, the
// context is unchanged, and the log says once what is emulated.
func TestMountEmulatedWithoutSysAdmin(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	df := `ARG BASE
FROM ${BASE} AS tools
RUN mkdir -p /out && echo tool-v1 > /out/tool.txt
FROM ${BASE}
RUN mkdir -p /srv/keep && echo kept > /srv/keep/file
RUN --mount=type=bind,from=tools,source=/out,target=/mnt/tools sh -c 'cat /mnt/tools/tool.txt > /got; echo x > /mnt/tools/new; echo changed > /mnt/tools/tool.txt'
RUN --mount=type=bind,from=tools,source=out,target=/mnt/tools,rw sh -c 'cat /mnt/tools/tool.txt > /rw; ls /mnt/tools > /rwlist; echo changed > /mnt/tools/tool.txt'
RUN --mount=type=bind,source=data,target=/ctx sh -c 'cat /ctx/file > /fromctx; ls /ctx > /ctxlist; echo written > /ctx/file'
RUN --mount=type=bind,source=data/file,target=/etc/single sh -c 'cat /etc/single > /single; echo written > /etc/single'
RUN --mount=type=tmpfs,target=/srv/keep sh -c 'ls -A /srv/keep > /t1; stat -c %a /srv/keep > /tmode; echo x > /srv/keep/f'
RUN --mount=type=tmpfs,target=/scratch sh -c 'ls -A /scratch > /t2; echo x > /scratch/f'
RUN --mount=type=cache,target=/srv/keep,id=c sh -c 'ls -A /srv/keep > /c1; echo cached > /srv/keep/c'
RUN cat /srv/keep/file > /after; ls -A /srv/keep > /afterlist
`
	ctx := contextWith(t, df, map[string]string{"data/file": "from the context\n", "data/notes.tmp": "ignored\n",
		".dockerignore": "**/*.tmp\n"})
	ref := reg.Ref("it/emulated:latest")
	r := emulatedMode.run(t, mountBuild{ctx: ctx, cache: t.TempDir(), args: []string{"--build-arg", "BASE=" + base,
		"--destination", ref, "--insecure", "--insecure-pull", "--cache-dir", "{cache}"}})
	wantOK(t, r)
	wantEmulated(t, r, "Dockerfile:6", "bind /mnt/tools: a copy of the source")
	fs := testenv.ExportImage(t, reg, ref)
	for p, want := range map[string]string{"got": "tool-v1\n", "rw": "tool-v1\n", "rwlist": "tool.txt\n",
		"fromctx": "from the context\n", "ctxlist": "file\n", "single": "from the context\n",
		"t1": "", "tmode": "1777\n", "t2": "", "c1": "", "after": "kept\n", "afterlist": "file\n"} {
		if got := string(file(t, fs, p).Content); got != want {
			t.Errorf("/%s = %q, want %q", p, got, want)
		}
	}
	if got := readFile(t, filepath.Join(ctx, "data/file")); got != "from the context\n" {
		t.Errorf("the context's data/file = %q: a RUN wrote through its bind mount", got)
	}
	img := pull(t, reg, ref)
	noLayerHas(t, img, "mnt", "ctx", "scratch", "etc/single", "srv/keep/f", "srv/keep/c")
	layers := layerEntries(t, img)
	made := slices.IndexFunc(layers, func(l []string) bool { return slices.Contains(l, "srv/keep/file") })
	if made < 0 {
		t.Fatal("no layer holds /srv/keep/file")
	}
	for i, entries := range layers[made+1:] { // the RUNs with mounts, and the last one
		for _, e := range entries {
			if e == "srv" || strings.HasPrefix(e, "srv/") || e == "etc" {
				t.Errorf("layer %d holds %s: an emulated mount left a trace", made+1+i, e)
			}
		}
	}

	// A target that is a mount point of the pod cannot be emulated: the RUN fails naming it.
	bad := contextWith(t, "ARG BASE\nFROM ${BASE}\nRUN --mount=type=tmpfs,target=/workspace true\n", nil)
	r = emulatedMode.run(t, mountBuild{ctx: bad, cache: t.TempDir(), args: []string{"--build-arg", "BASE=" + base,
		"--no-push", "--insecure-pull", "--cache-dir", "{cache}"}})
	wantFailure(t, r, "Dockerfile:3", "target=/workspace", "must leave alone", "CAP_SYS_ADMIN")
}

// TestNetworkNone: RUN --network=none cannot reach the test registry, while RUN without it
// (or with --network=host) can. A pod without CAP_SYS_ADMIN cannot isolate a RUN's network
// (mounts can be emulated, a network namespace cannot): the build fails and says so, naming
// the line and the ways out.
func TestNetworkNone(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	// busybox's wget crashes in a static build; nc speaks HTTP well enough.
	df := `ARG BASE
FROM ${BASE}
ARG HOST
ARG PORT
COPY probe.sh /
RUN sh /probe.sh > /default
RUN --network=none sh -c 'sh /probe.sh > /none; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " " > /interfaces'
RUN --network=host sh /probe.sh > /host
`
	probe := `printf 'GET /v2/ HTTP/1.0\r\n\r\n' | nc -w 5 "$HOST" "$PORT" | grep -q '^HTTP/1.. 200' && echo reachable || echo blocked
`
	host, port, _ := strings.Cut(reg.Addr, ":")
	args := []string{"--build-arg", "BASE=" + base, "--build-arg", "HOST=" + host, "--build-arg", "PORT=" + port,
		"--insecure", "--insecure-pull", "--cache-dir", "{cache}"}
	for _, mode := range buildModes {
		t.Run(mode.name, func(t *testing.T) {
			ctx := contextWith(t, df, map[string]string{"probe.sh": probe})
			ref := reg.Ref("it/network-" + mode.name + ":latest")
			wantOK(t, mode.run(t, mountBuild{ctx: ctx, cache: t.TempDir(), args: append(args, "--destination", ref)}))
			fs := testenv.ExportImage(t, reg, ref)
			for p, want := range map[string]string{"default": "reachable\n", "none": "blocked\n", "host": "reachable\n", "interfaces": "lo\n"} {
				if got := string(file(t, fs, p).Content); got != want {
					t.Errorf("/%s = %q, want %q", p, got, want)
				}
			}
		})
	}
	t.Run("pod without CAP_SYS_ADMIN", func(t *testing.T) {
		ctx := contextWith(t, df, map[string]string{"probe.sh": probe})
		r := runMountPod(t, mountBuild{ctx: ctx, cache: t.TempDir(), dropSysAdmin: true, args: append(args, "--no-push")})
		wantFailure(t, r, "Dockerfile:7", "--network=none", "CAP_SYS_ADMIN", "--network=default", "directory mode")
	})
}

// TestMountSSH: RUN --mount=type=ssh reaches the agent given with --ssh default (its socket
// from SSH_AUTH_SOCK) and one the build serves itself from a key file (--ssh ID=KEYFILE), at
// /run/buildkit/ssh_agent.0 with SSH_AUTH_SOCK set, owned as the mount says; no key and no
// socket enters the image, and a required agent that was not given fails naming the line.
func TestMountSSH(t *testing.T) {
	requireRoot(t)
	for _, tool := range []string{"ssh-agent", "ssh-keygen", "ssh-add"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (openssh-client)", tool)
		}
	}
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	keys := t.TempDir()
	agentSock := startSSHAgent(t, keys)
	df := `ARG BASE
FROM ${BASE}
COPY agentls /usr/local/bin/agentls
RUN --mount=type=ssh sh -c 'agentls > /default-keys && echo "$SSH_AUTH_SOCK" > /sock'
RUN --mount=type=ssh,id=files,uid=1000,mode=0660 sh -c 'stat -c "%u %a" "$SSH_AUTH_SOCK" > /files-stat; agentls > /files-keys'
RUN --mount=type=ssh,id=absent ls /run/buildkit 2>/dev/null > /absent || echo none > /absent
`
	agentls := buildAgentls(t)
	for _, mode := range append(buildModes, emulatedMode) {
		t.Run(mode.name, func(t *testing.T) {
			ctx := contextWith(t, df, map[string]string{"agentls": agentls})
			if err := os.Chmod(filepath.Join(ctx, "agentls"), 0o755); err != nil {
				t.Fatal(err)
			}
			ref := reg.Ref("it/ssh-" + mode.name + ":latest")
			sock := agentSock
			if mode.pod {
				sock = "/secrets/agent.sock"
			}
			r := mode.run(t, mountBuild{ctx: ctx, cache: t.TempDir(), secrets: keys, env: []string{"SSH_AUTH_SOCK=" + sock},
				args: []string{"--build-arg", "BASE=" + base, "--destination", ref, "--insecure", "--insecure-pull",
					"--cache-dir", "{cache}", "--ssh", "default", "--ssh", "files={secrets}/filekey"}})
			wantOK(t, r)
			if !strings.Contains(r.log, "ssh agent id=absent was not given") {
				t.Errorf("no warning about the missing agent:\n%s", r.log)
			}
			fs := testenv.ExportImage(t, reg, ref)
			for p, want := range map[string]string{"default-keys": "kiln-agent-key\n", "sock": "/run/buildkit/ssh_agent.0\n",
				"files-keys": "filekey\n", "files-stat": "1000 660\n", "absent": "none\n"} {
				if got := string(file(t, fs, p).Content); got != want {
					t.Errorf("/%s = %q, want %q", p, got, want)
				}
			}
			noLayerHas(t, pull(t, reg, ref), "run")
			key := privateKeyLine(t, filepath.Join(keys, "filekey"))
			for _, d := range append(r.dirs, ctx) {
				noSecretIn(t, d, key, filepath.Join(r.dirs[0], "secrets"))
			}
		})
	}
	t.Run("required and missing", func(t *testing.T) {
		ctx := contextWith(t, "ARG BASE\nFROM ${BASE}\nRUN --mount=type=ssh,id=gh,required true\n", nil)
		r := runMountDir(t, mountBuild{ctx: ctx, cache: t.TempDir(), args: []string{"--build-arg", "BASE=" + base,
			"--insecure-pull", "--no-push", "--cache-dir", "{cache}"}})
		wantFailure(t, r, "Dockerfile:3", "ssh agent id=gh is required but was not given")
	})
}

// startSSHAgent runs ssh-agent on dir/agent.sock holding a new key commented "kiln-agent-key",
// writes a second key, dir/filekey, that the agent does not hold, and returns the socket.
func startSSHAgent(t *testing.T, dir string) string {
	t.Helper()
	sock := filepath.Join(dir, "agent.sock")
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
	for _, k := range [][2]string{{"agentkey", "kiln-agent-key"}, {"filekey", "kiln-file-key"}} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", k[1], "-f", filepath.Join(dir, k[0])).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	var err error
	for i := 0; i < 100; i++ { // the agent creates its socket shortly after starting
		add := exec.Command("ssh-add", filepath.Join(dir, "agentkey"))
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		var out []byte
		if out, err = add.CombinedOutput(); err == nil {
			return sock
		}
		err = fmt.Errorf("%v: %s", err, out)
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("ssh-add: %v", err)
	return ""
}

// buildAgentls builds testdata/agentls statically and returns the binary's content.
func buildAgentls(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "agentls")
	cmd := exec.Command("go", "build", "-o", out, "./testdata/agentls")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build agentls: %v\n%s", err, b)
	}
	return readFile(t, out)
}

// privateKeyLine is a line from the middle of a private key file, to search for.
func privateKeyLine(t *testing.T, p string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(readFile(t, p)), "\n")
	if len(lines) < 3 {
		t.Fatalf("%s is no private key", p)
	}
	return lines[1]
}
