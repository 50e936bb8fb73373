package integration

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/testenv"
	"github.com/kilnbuild/kiln/internal/testenv/gitserver"
)

// secretsDockerfile is the build of TestSecretsNeverLeak, fetched from a git context. Its base
// comes through the Docker Hub mirror, its second stage from the password-protected registry;
// the build arg and the secret mount are used without being printed; the whole context (its
// .git included) is copied into the image, and so is the environment a RUN sees where no build
// arg is declared (it must not inherit the executor's, where the --secret env= value is).
const secretsDockerfile = `FROM kilnbase:1 AS build
ARG TOKEN
ARG NOTSECRET=plain
RUN test -n "$TOKEN" && echo "token-length-${#TOKEN}" > /token-length && echo "arg-used-$((6*7))"
RUN --mount=type=secret,id=apikey test -s /run/secrets/apikey && echo secret-read > /secret-read
FROM {{REGISTRY}}/base/busybox:latest
RUN env | sort > /run-env
ARG TOKEN
COPY --from=build /token-length /secret-read /
COPY . /src/
RUN test -n "${TOKEN}" && echo "second-stage-$((6*7))" > /second
`

// TestSecretsNeverLeak plants unique values as a --build-arg, as the password of a registry
// (htpasswd, given in config.json), as the password in a --registry-mirror URL's user info
// (the mirror requires it), as the
// credentials of a git context's URL and as a RUN --mount=type=secret value, then builds (with
// the layer cache in that registry and a --cache-dir volume, and a --tar-path output) at every
// verbosity and log format, and fails builds with a wrong password, an unreachable mirror, a
// wrong git token and a failing RUN that reads the arg. Every log, every layer, config and
// history of the image, every cache entry, the --cache-dir volume and the tarball are searched
// for each value (also base64-encoded, as in an Authorization header): none is found.
func TestSecretsNeverLeak(t *testing.T) {
	requireRoot(t)
	var secrets testenv.Secrets
	argSecret := testenv.NewSecret(t, "buildarg")
	unusedArg := testenv.NewSecret(t, "unusedbuildarg")
	gitToken := testenv.NewSecret(t, "gittoken")
	mountSecret := testenv.NewSecret(t, "mountsecret")
	wrongPassword := testenv.NewSecret(t, "wrongpassword")
	wrongGitToken := testenv.NewSecret(t, "wronggittoken")
	wrongMirrorToken := testenv.NewSecret(t, "wrongmirrortoken")

	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Auth: true})
	secrets.Add("registry password", reg.Password, reg.User+":"+reg.Password)
	secrets.Add("--build-arg TOKEN value", argSecret)
	secrets.Add("--build-arg UNUSED value", unusedArg)
	secrets.Add("git context token", gitToken, "git:"+gitToken)
	secrets.Add("secret mount value", mountSecret)
	secrets.Add("wrong registry password", wrongPassword, reg.User+":"+wrongPassword)
	secrets.Add("wrong git token", wrongGitToken, "git:"+wrongGitToken)
	testenv.PushBusybox(t, reg, "base/busybox:latest")
	// The Docker Hub mirror needs its own credentials, which only the mirror URL gives.
	mirror := testenv.StartRegistry(t, testenv.RegistryOptions{Auth: true})
	mirrorToken := mirror.Password
	secrets.Add("--registry-mirror token", mirrorToken, mirror.User+":"+mirrorToken)
	secrets.Add("wrong --registry-mirror token", wrongMirrorToken, mirror.User+":"+wrongMirrorToken)
	testenv.PushBusybox(t, mirror, "library/kilnbase:1")

	gitHost := startAuthGitServer(t, "git", gitToken, map[string]string{
		"Dockerfile": strings.ReplaceAll(secretsDockerfile, "{{REGISTRY}}", reg.Addr),
		"README":     "the context of TestSecretsNeverLeak\n",
	})
	gitContext := func(token string) string { return "git://git:" + token + "@" + gitHost + "/app.git#refs/heads/main" }
	cacheRepo := reg.Ref("it/secrets-cache")
	dest := reg.Ref("it/secrets:1")
	goodConfig := reg.DockerConfig(t)
	badConfig := dockerConfigWith(t, reg.Addr, reg.User, wrongPassword)
	cacheDir, outDir := t.TempDir(), t.TempDir()

	type run struct {
		name    string
		ok      bool
		context string
		config  string
		mirror  string
		extra   []string
	}
	mirrorURL := "https://" + mirror.User + ":" + mirrorToken + "@" + mirror.Addr
	good := run{context: gitContext(gitToken), config: goodConfig, mirror: mirrorURL, ok: true}
	var runs []run
	for _, v := range []string{"trace", "debug", "info"} {
		for _, f := range []string{"text", "json"} {
			r := good
			r.name, r.extra = v+"/"+f, []string{"--verbosity", v, "--log-format", f}
			runs = append(runs, r)
		}
	}
	for _, f := range []string{"text", "json"} {
		verbose := []string{"--verbosity", "trace", "--log-format", f}
		bad := good
		bad.ok, bad.name, bad.config, bad.extra = false, "wrong registry password/"+f, badConfig, verbose
		runs = append(runs, bad)
		bad = good
		bad.ok, bad.name, bad.mirror = false, "unreachable mirror/"+f, "https://mirror:"+mirrorToken+"@127.0.0.1:1"
		bad.extra = append([]string{"--skip-default-registry-fallback"}, verbose...)
		runs = append(runs, bad)
		bad = good
		bad.ok, bad.name, bad.mirror = false, "wrong mirror token/"+f, "https://"+mirror.User+":"+wrongMirrorToken+"@"+mirror.Addr
		bad.extra = append([]string{"--skip-default-registry-fallback"}, verbose...)
		runs = append(runs, bad)
		bad = good
		bad.ok, bad.name, bad.context, bad.extra = false, "wrong git token/"+f, gitContext(wrongGitToken), verbose
		runs = append(runs, bad)
		bad = good
		bad.ok, bad.name, bad.extra = false, "unreachable https context/"+f, verbose
		bad.context = "https://git:" + gitToken + "@127.0.0.1:1/context.tar.gz"
		runs = append(runs, bad)
		bad = good
		bad.ok, bad.name, bad.extra = false, "malformed --build-arg/"+f, append([]string{"--build-arg", "=" + argSecret}, verbose...)
		runs = append(runs, bad)
		bad = good
		bad.ok, bad.name = false, "failing RUN reading the arg/"+f
		bad.extra = append([]string{"--build-arg", "NOTSECRET=fail", "--target", "build"}, verbose...)
		runs = append(runs, bad)
	}

	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			args := []string{"--force", "--context", r.context, "--git", "insecure-skip-tls=true",
				"--build-arg", "TOKEN=" + argSecret, "--build-arg", "UNUSED=" + unusedArg, "--registry-mirror", r.mirror,
				"--secret", "id=apikey,env=KILN_API_KEY",
				"--destination", dest, "--insecure", "--insecure-pull",
				"--cache", "--cache-repo", cacheRepo, "--cache-dir", "/cache", "--cache-copy-layers",
				"--tar-path", "/out/image.tar"}
			args = append(args, r.extra...)
			if strings.HasPrefix(r.name, "failing RUN") {
				// The arg is compared in a RUN that fails; its text shows only the variable.
				args = append(args, "--dockerfile", "Dockerfile.fail")
			}
			podCache := cacheDir
			if strings.HasPrefix(r.name, "unreachable mirror") {
				// With the base image's resolution in --cache-dir, an unreachable registry is
				// no failure (the cached answer is used, with a warning): an empty volume makes
				// the build need the mirror.
				podCache = t.TempDir()
			}
			p := testenv.Pod{Executor: testenv.BuildExecutor(t), Context: t.TempDir(), Args: args,
				DockerConfig: r.config, Env: []string{"KILN_API_KEY=" + mountSecret},
				Mounts: map[string]string{"/cache": podCache, "/out": outDir}}
			res := testenv.RunPod(t, p)
			if (res.ExitCode == 0) != r.ok {
				t.Fatalf("exit code %d, want success=%v\n%s\n%s", res.ExitCode, r.ok, res.Stdout, res.Stderr)
			}
			if !r.ok {
				t.Logf("the user sees: %s", lastLine(res.Stderr))
			}
			leaks := secrets.Scan("the log (stderr)", []byte(res.Stderr))
			leaks = append(leaks, secrets.Scan("the log (stdout)", []byte(res.Stdout))...)
			if r.ok {
				// The first build runs the RUNs; the others hit the cache it wrote.
				if !strings.Contains(res.Stdout, "arg-used-42") && !strings.Contains(res.Stderr, "cache hit") {
					t.Errorf("the first RUN neither ran nor hit the cache:\n%s\n%s", res.Stdout, res.Stderr)
				}
				leaks = append(leaks, secrets.ScanImage(t, reg, dest)...)
				leaks = append(leaks, secrets.ScanRepository(t, reg, cacheRepo)...)
				leaks = append(leaks, secrets.ScanTree(t, cacheDir)...)
				leaks = append(leaks, secrets.ScanTree(t, outDir)...)
				// The executor's own directory, but for the credentials the pod was given.
				for _, d := range []string{"buildcontext", "layers", "stages", "images", "tmp"} {
					if _, err := os.Stat(filepath.Join(res.Root, "kaniko", d)); err == nil {
						leaks = append(leaks, secrets.ScanTree(t, filepath.Join(res.Root, "kaniko", d))...)
					}
				}
				checkHistory(t, reg, dest)
			}
			for _, l := range leaks {
				t.Errorf("leak: %s", l)
			}
		})
	}
}

// checkHistory fails the test when the image's history records build args (Docker's classic
// builder writes "|1 TOKEN=value" in created_by; Kaniko does not, nor does Kiln).
func checkHistory(t *testing.T, reg *testenv.Registry, ref string) {
	t.Helper()
	for _, h := range testenv.Config(t, reg, ref).History {
		if strings.Contains(h.CreatedBy, "TOKEN=") || strings.HasPrefix(h.CreatedBy, "|") {
			t.Errorf("history records a build arg: %q", h.CreatedBy)
		}
	}
}

// startAuthGitServer serves a repository app.git holding files (branch main) over HTTPS with
// basic auth user:password, and returns its host:port.
func startAuthGitServer(t *testing.T, user, password string, files map[string]string) string {
	t.Helper()
	gitBin := gitserver.RequireGit(t)
	root := t.TempDir()
	repo := gitserver.NewRepo(t)
	gitserver.Commit(t, repo, "the context", files)
	// Dockerfile.fail: the failing RUN of the "failing RUN" builds.
	gitserver.Commit(t, repo, "a failing variant", map[string]string{"Dockerfile.fail": `FROM kilnbase:1 AS build
ARG TOKEN
ARG NOTSECRET
RUN test "$TOKEN" = "$NOTSECRET"
`})
	(&gitserver.Server{Root: root}).Publish(t, repo, "app.git")
	backend := &cgi.Handler{Path: gitBin, Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "HOME=" + root}, Stderr: io.Discard}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u+":"+p), []byte(user+":"+password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="kiln-test-git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// dockerConfigWith writes a config.json with user:password for registry and returns its path.
func dockerConfigWith(t *testing.T, registry, user, password string) string {
	t.Helper()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	b, err := json.Marshal(map[string]any{"auths": map[string]any{registry: map[string]string{"auth": auth}}})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
