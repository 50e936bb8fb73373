package integration

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/executor"
	"github.com/kilnbuild/kiln/internal/testenv"
	"github.com/kilnbuild/kiln/internal/testenv/gitserver"
	"github.com/kilnbuild/kiln/registry"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// The BuildKit features beyond Kaniko (COPY --parents, COPY --link, ADD of a Git repository,
// named contexts, # syntax= and # check=) are built both ways, with the same flags: the
// executor binary as a build pod (pod mode), and the executor library into a directory root
// (directory mode). Each build pushes to a test registry, whose image is then read back.

// bkBuild is one executor run of these tests.
type bkBuild struct {
	ctx  string            // host context directory
	dirs map[string]string // host directories the build sees as {NAME}: /NAME in the pod, the host path otherwise
	env  []string          // the executor's environment, KEY=VALUE
	args []string          // flags, with {NAME} standing for dirs[NAME]
}

// bkResult is a run's whole log and exit code.
type bkResult struct {
	log  string
	code int
}

// bkModes names the two ways of running the executor.
var bkModes = []struct {
	name string
	pod  bool
}{{"pod", true}, {"directory", false}}

// run builds in pod mode or directory mode; want says whether it must succeed.
func (b bkBuild) run(t *testing.T, pod, want bool) bkResult {
	t.Helper()
	var res bkResult
	if pod {
		res = b.inPod(t)
	} else {
		res = b.inDirectory(t)
	}
	if (res.code == 0) != want {
		t.Fatalf("exit code %d, want success=%v\n%s", res.code, want, res.log)
	}
	return res
}

// expand replaces {NAME} in args by where the build sees dirs[NAME].
func (b bkBuild) expand(pod bool) []string {
	var pairs []string
	for n, host := range b.dirs {
		seen := host
		if pod {
			seen = "/" + n
		}
		pairs = append(pairs, "{"+n+"}", seen)
	}
	r := strings.NewReplacer(pairs...)
	out := make([]string, len(b.args))
	for i, a := range b.args {
		out[i] = r.Replace(a)
	}
	return out
}

func (b bkBuild) inPod(t *testing.T) bkResult {
	mounts := map[string]string{}
	for n, host := range b.dirs {
		mounts["/"+n] = host
	}
	res := testenv.RunPod(t, testenv.Pod{Executor: testenv.BuildExecutor(t), Context: b.ctx, Env: b.env, Mounts: mounts,
		Args: append([]string{"--force", "--context", "dir:///workspace", "--log-format", "text"}, b.expand(true)...)})
	return bkResult{log: res.Stdout + res.Stderr, code: res.ExitCode}
}

func (b bkBuild) inDirectory(t *testing.T) bkResult {
	args := append([]string{"--context", "dir://" + b.ctx, "--log-format", "text"}, b.expand(false)...)
	cfg, err := executor.ParseFlags(args)
	if err != nil {
		return bkResult{log: err.Error(), code: 2}
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
	_, err = executor.Run(context.Background(), cfg, executor.WithDirectoryRoot(filepath.Join(dir, "root")),
		executor.WithWorkDir(filepath.Join(dir, "work")), executor.WithLogger(log), executor.WithOutput(out),
		executor.WithLookupEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	res := bkResult{}
	if err != nil {
		fmt.Fprintf(out, "error: %v\n", err)
		res.code = 1
	}
	res.log = out.String()
	return res
}

// bkPush is the flags that push to reg as dest, pulling base images from reg.
func bkPush(reg *testenv.Registry, dest string) []string {
	return []string{"--destination", reg.Ref(dest), "--insecure", "--insecure-pull"}
}

// TestBuildkitCopyParentsAndDirectives: COPY --parents with a pivot, "**" and --from, in a
// Dockerfile with # syntax= and # check= directives, which are logged and change nothing.
func TestBuildkitCopyParentsAndDirectives(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	ctx := writeContext(t, map[string]string{
		"Dockerfile": `# syntax=docker/dockerfile:1
# check=skip=JSONArgsRecommended;error=true
ARG BASE
FROM ${BASE} AS files
COPY . /ctx/
FROM ${BASE}
COPY --parents ./x/a.txt ./y/a.txt /parents/
COPY --parents src/./app/**/*.go /go/
COPY --from=files --parents /ctx/./src/app/util /from/
RUN test -f /parents/x/a.txt && test -f /go/app/util/u.go && ! test -e /go/app/README.md
`,
		"x/a.txt": "xa", "y/a.txt": "ya", "src/app/main.go": "m", "src/app/util/u.go": "u", "src/app/README.md": "r",
	})
	for _, m := range bkModes {
		t.Run(m.name, func(t *testing.T) {
			dest := "it/parents-" + m.name + ":1"
			res := bkBuild{ctx: ctx, args: append([]string{"--build-arg", "BASE=" + base}, bkPush(reg, dest)...)}.run(t, m.pod, true)
			for _, note := range []string{"syntax directive docker/dockerfile:1 noted; Kiln's own parser is used",
				"check directive skip=JSONArgsRecommended;error=true noted; Kiln runs no build checks"} {
				if !strings.Contains(res.log, note) {
					t.Errorf("log lacks %q:\n%s", note, res.log)
				}
			}
			fs := testenv.ExportImage(t, reg, reg.Ref(dest))
			for p, want := range map[string]string{"parents/x/a.txt": "xa", "parents/y/a.txt": "ya", "go/app/main.go": "m",
				"go/app/util/u.go": "u", "from/src/app/util/u.go": "u"} {
				if got := string(file(t, fs, p).Content); got != want {
					t.Errorf("%s = %q, want %q", p, got, want)
				}
			}
			absent(t, fs, "go/app/README.md", "parents/a.txt")
		})
	}
}

// TestBuildkitCopyLink: a COPY --link layer is the copied file and its parent only (the base's
// /app symlink is replaced, not followed), and after the base image changes it still comes
// from the layer cache, the same blob, while the RUN after it runs again on the new base.
func TestBuildkitCopyLink(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	busybox := testenv.PushBusybox(t, reg, "base/busybox:latest")
	bases := map[string]string{}
	for _, v := range []string{"1", "2"} {
		baseCtx := writeContext(t, map[string]string{"Dockerfile": "ARG BASE\nFROM ${BASE}\n" +
			"RUN mkdir -p /opt/app && echo old > /opt/app/old && ln -s opt/app /app && echo " + v + " > /etc/base-version\n"})
		bases[v] = reg.Ref("base/linkbase:" + v)
		bkBuild{ctx: baseCtx, args: append([]string{"--build-arg", "BASE=" + busybox}, bkPush(reg, "base/linkbase:"+v)...)}.
			run(t, false, true)
	}
	ctx := writeContext(t, map[string]string{
		"Dockerfile": "ARG BASE\nFROM ${BASE}\nCOPY --link app.txt /app/app.txt\n" +
			"RUN test -d /app && ! test -L /app && cat /app/app.txt /etc/base-version > /seen\n",
		"app.txt": "app\n",
	})
	for _, m := range bkModes {
		t.Run(m.name, func(t *testing.T) {
			cacheRepo := reg.Ref("it/link-cache-" + m.name)
			build := func(v string) (bkResult, map[string]testenv.FileEntry, string) {
				dest := "it/link-" + m.name + ":" + v
				res := bkBuild{ctx: ctx, args: append([]string{"--build-arg", "BASE=" + bases[v], "--cache=true",
					"--cache-copy-layers", "--cache-repo", cacheRepo, "--reproducible"}, bkPush(reg, dest)...)}.run(t, m.pod, true)
				return res, testenv.ExportImage(t, reg, reg.Ref(dest)), linkLayer(t, reg.Ref(dest))
			}
			first, fs1, layer1 := build("1")
			second, fs2, layer2 := build("2")
			if !strings.Contains(first.log, "cache miss") || strings.Contains(first.log, "cache hit") {
				t.Errorf("first build: want misses only:\n%s", first.log)
			}
			if n := strings.Count(second.log, "cache hit"); n != 1 || !hitFor(second.log, "COPY --link app.txt /app/app.txt") {
				t.Errorf("second build (new base): want the --link COPY, only it, from the cache:\n%s", second.log)
			}
			if layer1 != layer2 {
				t.Errorf("the --link layer changed with the base: %s, then %s", layer1, layer2)
			}
			for v, fs := range map[string]map[string]testenv.FileEntry{"1": fs1, "2": fs2} {
				if e := file(t, fs, "app"); e.Type != '5' {
					t.Errorf("base %s: /app is of type %q, want a directory replacing the symlink", v, e.Type)
				}
				if got := string(file(t, fs, "seen").Content); got != "app\n"+v+"\n" {
					t.Errorf("base %s: RUN saw %q", v, got)
				}
				file(t, fs, "opt/app/old")
				absent(t, fs, "opt/app/app.txt")
			}
		})
	}
}

// hitFor reports whether the log has a cache hit on the line after the step's.
func hitFor(log, step string) bool {
	i := strings.Index(log, step)
	return i >= 0 && strings.Contains(log[i:min(len(log), i+len(step)+200)], "cache hit")
}

// linkLayer is the digest of the second-to-last layer of ref (the --link COPY's).
func linkLayer(t *testing.T, ref string) string {
	t.Helper()
	img, err := registry.Pull(context.Background(), ref, registry.WithInsecureAll(true))
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) < 2 {
		t.Fatalf("layers of %s: %v (%d)", ref, err, len(layers))
	}
	d, err := layers[len(layers)-2].Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// TestBuildkitAddGit: ADD of a repository over http (a branch, a sub-directory, .git kept)
// and over ssh with the build's ssh agent (--ssh default=KEYFILE), host key checked against
// $SSH_KNOWN_HOSTS.
func TestBuildkitAddGit(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	srv := gitserver.Serve(t, false)
	repo := gitserver.NewRepo(t)
	gitserver.Commit(t, repo, "main", map[string]string{"README": "main\n"})
	gitserver.Git(t, repo, "checkout", "-q", "-b", "dev")
	gitserver.Commit(t, repo, "dev", map[string]string{"README": "dev\n", "docs/guide.md": "guide\n"})
	gitserver.Git(t, repo, "checkout", "-q", "main")
	srv.Publish(t, repo, "app.git")
	secrets := t.TempDir()
	sshAddr := startGitSSH(t, srv.Root, secrets)

	ctx := writeContext(t, map[string]string{"Dockerfile": "ARG BASE\nFROM ${BASE}\n" +
		"ADD " + srv.URL + "/app.git#dev /src\n" +
		"ADD " + srv.URL + "/app.git#dev:docs /docs\n" +
		"ADD --keep-git-dir=true " + srv.URL + "/app.git /withgit/\n" +
		"ADD ssh://git@" + sshAddr + "/app.git#dev /viassh\n" +
		"RUN cat /src/README /viassh/README && test -f /withgit/.git/HEAD && ! test -e /src/.git\n"})
	for _, m := range bkModes {
		t.Run(m.name, func(t *testing.T) {
			known := filepath.Join(secrets, "known_hosts")
			if m.pod {
				known = "/secrets/known_hosts"
			} else {
				t.Setenv("SSH_KNOWN_HOSTS", known) // go-git reads it from the process
			}
			dest := "it/addgit-" + m.name + ":1"
			res := bkBuild{ctx: ctx, dirs: map[string]string{"secrets": secrets}, env: []string{"SSH_KNOWN_HOSTS=" + known},
				args: append([]string{"--build-arg", "BASE=" + base, "--ssh", "default={secrets}/id_ed25519"},
					bkPush(reg, dest)...)}.run(t, m.pod, true)
			if !strings.Contains(res.log, "dev\ndev\n") {
				t.Errorf("RUN did not print both READMEs:\n%s", res.log)
			}
			fs := testenv.ExportImage(t, reg, reg.Ref(dest))
			for p, want := range map[string]string{"src/README": "dev\n", "docs/guide.md": "guide\n", "withgit/README": "main\n",
				"viassh/README": "dev\n"} {
				if got := string(file(t, fs, p).Content); got != want {
					t.Errorf("%s = %q, want %q", p, got, want)
				}
			}
			if e := file(t, fs, "src/README"); e.Mode != 0o644 || e.UID != 0 {
				t.Errorf("src/README mode %o uid %d, want 644 and root", e.Mode, e.UID)
			}
			file(t, fs, "withgit/.git/HEAD")
			absent(t, fs, "src/.git", "viassh/.git", "docs/README")
		})
	}
}

// TestBuildkitNamedContexts: --build-context with a directory (its .dockerignore applied), a
// registry image used by FROM, an OCI layout by tag, a directory replacing a stage whose
// instructions then never run, and a directory bind-mounted into a RUN. In pod mode a
// directory context must be a mounted volume.
func TestBuildkitNamedContexts(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	extra := writeContext(t, map[string]string{"lib/a.txt": "A\n", "secret.key": "no\n", ".dockerignore": "*.key\n"})
	layoutDir := t.TempDir()
	img, err := registry.Pull(context.Background(), base, registry.WithInsecureAll(true))
	if err != nil {
		t.Fatal(err)
	}
	if err := registry.WriteOCILayout(filepath.Join(layoutDir, "oci"), img, "tools-v1"); err != nil {
		t.Fatal(err)
	}
	ctx := writeContext(t, map[string]string{"Dockerfile": `FROM busybox AS deps
RUN echo THIS-STAGE-RAN && exit 1
FROM tools AS t
FROM base
COPY --from=extra lib/a.txt /got/a.txt
COPY --from=deps . /deps/
COPY --from=t /bin/busybox /tools-busybox
RUN test -f /got/a.txt && ! test -e /deps/secret.key && echo NAMED-OK
RUN --mount=type=bind,from=extra,target=/mnt/extra test -f /mnt/extra/lib/a.txt && echo MOUNT-OK
`})
	for _, m := range bkModes {
		t.Run(m.name, func(t *testing.T) {
			dest := "it/named-" + m.name + ":1"
			res := bkBuild{ctx: ctx, dirs: map[string]string{"extra": extra, "layout": layoutDir},
				args: append([]string{"--build-context", "extra=dir://{extra}", "--build-context", "deps={extra}",
					"--build-context", "base=docker-image://" + base, "--build-context", "tools=oci-layout://{layout}/oci:tools-v1"},
					bkPush(reg, dest)...)}.run(t, m.pod, true)
			if strings.Contains(res.log, "THIS-STAGE-RAN") || !strings.Contains(res.log, "NAMED-OK") || !strings.Contains(res.log, "MOUNT-OK") {
				t.Errorf("want the deps stage replaced and the RUN to pass:\n%s", res.log)
			}
			fs := testenv.ExportImage(t, reg, reg.Ref(dest))
			if got := string(file(t, fs, "got/a.txt").Content); got != "A\n" {
				t.Errorf("got/a.txt = %q", got)
			}
			file(t, fs, "deps/lib/a.txt")
			file(t, fs, "tools-busybox")
			file(t, fs, "bin/busybox") // FROM base: the registry image
			absent(t, fs, "deps/secret.key")
		})
	}
	t.Run("pod refuses an unmounted directory", func(t *testing.T) {
		res := bkBuild{ctx: ctx, args: append([]string{"--build-context", "extra=dir:///etc", "--build-context", "deps=/etc",
			"--build-context", "base=docker-image://" + base, "--build-context", "tools=docker-image://" + base},
			bkPush(reg, "it/named-refused:1")...)}.run(t, true, false)
		if !strings.Contains(res.log, "must be on a mounted volume") {
			t.Errorf("want the refusal to say why:\n%s", res.log)
		}
	})
}

// startGitSSH serves the bare repositories under root over ssh on 127.0.0.1, as a Git host
// does: it runs git-upload-pack for the one key whose private half it writes to
// secrets/id_ed25519, and writes its own host key to secrets/known_hosts. It returns host:port.
func startGitSSH(t *testing.T, root, secrets string) string {
	t.Helper()
	clientPub := writeKey(t, filepath.Join(secrets, "id_ed25519"))
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if bytes.Equal(k.Marshal(), clientPub.Marshal()) {
			return nil, nil
		}
		return nil, errors.New("unknown key")
	}}
	cfg.AddHostKey(hostKey)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	addr := l.Addr().String()
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, hostKey.PublicKey())
	if err := os.WriteFile(filepath.Join(secrets, "known_hosts"), []byte(line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serveGitSSH(c, cfg, root)
		}
	}()
	return addr
}

// writeKey writes a new ed25519 private key (OpenSSH format) to p and returns its public key.
func writeKey(t *testing.T, p string) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// serveGitSSH answers one ssh connection: each session may exec git-upload-pack '<repo>'.
func serveGitSSH(c net.Conn, cfg *ssh.ServerConfig, root string) {
	conn, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		c.Close()
		return
	}
	defer conn.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "session only")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		go serveSession(ch, creqs, root)
	}
}

// serveSession runs the one command a Git client asks for.
func serveSession(ch ssh.Channel, reqs <-chan *ssh.Request, root string) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			_ = req.Reply(req.Type == "env", nil)
			continue
		}
		var cmd struct{ Line string }
		if err := ssh.Unmarshal(req.Payload, &cmd); err != nil {
			_ = req.Reply(false, nil)
			return
		}
		prog, repo, _ := strings.Cut(cmd.Line, " ")
		if prog != "git-upload-pack" {
			_ = req.Reply(false, nil)
			return
		}
		_ = req.Reply(true, nil)
		run := exec.Command("git-upload-pack", filepath.Join(root, strings.Trim(repo, "'\"/")))
		run.Stdout, run.Stderr = ch, ch.Stderr()
		in, err := run.StdinPipe()
		if err != nil {
			return
		}
		// Not awaited: the client keeps its side open until it sees the exit status.
		go func() { _, _ = io.Copy(in, ch); in.Close() }()
		status := uint32(0)
		if err := run.Run(); err != nil {
			status = 1
		}
		_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
		return
	}
}
