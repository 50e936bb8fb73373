package integration

import (
	"archive/tar"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/testenv"
)

const mainDockerfile = `ARG BASE
ARG GLOBAL=global-default
ARG UNSEEN=never
FROM ${BASE} AS build
ARG GLOBAL
ARG EMPTY=
RUN echo "global=${GLOBAL} unseen=[${UNSEEN}] empty=[${EMPTY}]" > /args.txt
WORKDIR /src
COPY src/ ./
RUN mkdir -p /out/sub && cp hello.txt /out/hello.txt && ln -s hello.txt /out/link && chmod 4755 /out/hello.txt && chmod 1777 /out/sub

FROM ${BASE} AS unused
RUN echo this stage must not run && exit 1

FROM ${BASE}
LABEL org.example.a=b "org.example.spaced"="two words"
MAINTAINER kiln-tests
ENV A=1 B="two words"
ENV C old-style value
COPY --from=build /out/ /app/
COPY --from=build /args.txt /app/args.txt
RUN echo "kid:x:1234:1234::/home/kid:/bin/sh" >> /etc/passwd && echo "kid:x:1234:" >> /etc/group && mkdir -p /home/kid /data && chown kid:kid /data /home/kid
COPY --chown=kid:kid src/hello.txt /data/owned.txt
COPY --chmod=0600 src/hello.txt /data/private.txt
RUN rm /bin/vi && rm -rf /tmp && mkdir /tmp && touch /tmp/new && echo "$A $B $C" > /env.txt && mkfifo /fifo && ln /env.txt /env-hardlink
USER kid
WORKDIR /home/kid/work
RUN id -u > /home/kid/work/uid.txt && pwd > pwd.txt
EXPOSE 8080 53/udp
VOLUME /data
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s --retries=2 CMD ["true"]
SHELL ["/bin/sh", "-ec"]
ONBUILD RUN echo onbuild
CMD ["echo", "hi"]
ENTRYPOINT ["/bin/sh", "-c"]
`

// TestPodMultiStageBuild builds a multi-stage Dockerfile that uses every kind of instruction
// with the executor binary run as a build pod, pushes it to a real registry and checks the
// pushed image with independent readers: files, modes, owners, contents, links, config.
func TestPodMultiStageBuild(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	ctx := writeContext(t, map[string]string{
		"Dockerfile":      mainDockerfile,
		"src/hello.txt":   "hello\n",
		"src/ignored.tmp": "must not be copied\n",
		".dockerignore":   "**/*.tmp\n",
	})
	dest := reg.Ref("it/multistage:1")
	res := buildInPod(t, ctx, 0, "--dockerfile", "Dockerfile", "--build-arg", "BASE="+base,
		"--destination", dest, "--insecure", "--insecure-pull", "--digest-file", "/workspace/digest")
	if strings.Contains(res.Stdout+res.Stderr, "this stage must not run") {
		t.Errorf("the unused stage ran:\n%s", res.Stdout)
	}
	for _, want := range []string{"RUN echo \"kid:x:1234:1234", "COPY --from=build /out/ /app/"} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("log does not name the instruction %q:\n%s", want, res.Stderr)
		}
	}

	fs := testenv.ExportImage(t, reg, dest)
	check := func(p string, typ byte, mode int64, uid int, content string) {
		t.Helper()
		e := file(t, fs, p)
		if e.Type != typ {
			t.Errorf("%s: type %q, want %q", p, e.Type, typ)
		}
		if mode >= 0 && e.Mode&0o7777 != mode {
			t.Errorf("%s: mode %o, want %o", p, e.Mode&0o7777, mode)
		}
		if uid >= 0 && e.UID != uid {
			t.Errorf("%s: uid %d, want %d", p, e.UID, uid)
		}
		if content != "" && string(e.Content) != content {
			t.Errorf("%s: content %q, want %q", p, e.Content, content)
		}
	}
	check("app/hello.txt", tar.TypeReg, 0o4755, 0, "hello\n")
	check("app/sub", tar.TypeDir, 0o1777, 0, "")
	check("app/args.txt", tar.TypeReg, 0o644, 0, "global=global-default unseen=[] empty=[]\n")
	if l := file(t, fs, "app/link"); l.Type != tar.TypeSymlink || l.Linkname != "hello.txt" {
		t.Errorf("app/link: %+v, want a symlink to hello.txt", l)
	}
	check("data/owned.txt", tar.TypeReg, 0o644, 1234, "hello\n")
	check("data/private.txt", tar.TypeReg, 0o600, 0, "hello\n")
	check("data", tar.TypeDir, -1, 1234, "")
	check("tmp/new", tar.TypeReg, -1, 0, "")
	check("fifo", tar.TypeFifo, -1, 0, "")
	// env.txt and env-hardlink are one file: the layer stores the first path in tar order as the
	// file and the other as a hard link to it.
	envFile, envLink := file(t, fs, "env-hardlink"), file(t, fs, "env.txt")
	if envFile.Type != tar.TypeReg || string(envFile.Content) != "1 two words old-style value\n" ||
		envLink.Type != tar.TypeLink || strings.TrimPrefix(envLink.Linkname, "/") != "env-hardlink" {
		t.Errorf("env.txt / env-hardlink: %+v / %+v, want a file and a hard link to it", envFile, envLink)
	}
	check("home/kid/work", tar.TypeDir, -1, 1234, "")
	check("home/kid/work/uid.txt", tar.TypeReg, -1, 1234, "1234\n")
	check("home/kid/work/pwd.txt", tar.TypeReg, -1, 1234, "/home/kid/work\n")
	check("bin/sh", tar.TypeSymlink, -1, 0, "")
	absent(t, fs, "bin/vi", "src/ignored.tmp", "kaniko", "workspace", "args.txt", "out")
	if _, ok := fs["etc/passwd"]; !ok || !strings.Contains(string(fs["etc/passwd"].Content), "kid:x:1234:") {
		t.Errorf("etc/passwd lacks the user added by RUN: %q", fs["etc/passwd"].Content)
	}

	cf := testenv.Config(t, reg, dest)
	c := cf.Config
	wantEnv := map[string]bool{"A=1": true, "B=two words": true, "C=old-style value": true}
	for _, e := range c.Env {
		delete(wantEnv, e)
	}
	if len(wantEnv) != 0 || !containsPrefix(c.Env, "PATH=") {
		t.Errorf("Env %q lacks %v or PATH", c.Env, wantEnv)
	}
	if c.User != "kid" || c.WorkingDir != "/home/kid/work" || c.StopSignal != "SIGTERM" || cf.Author != "kiln-tests" {
		t.Errorf("User %q WorkingDir %q StopSignal %q Author %q", c.User, c.WorkingDir, c.StopSignal, cf.Author)
	}
	if c.Labels["org.example.a"] != "b" || c.Labels["org.example.spaced"] != "two words" {
		t.Errorf("Labels %v", c.Labels)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok || len(c.ExposedPorts) != 2 {
		t.Errorf("ExposedPorts %v", c.ExposedPorts)
	}
	if _, ok := c.ExposedPorts["53/udp"]; !ok {
		t.Errorf("ExposedPorts %v", c.ExposedPorts)
	}
	if _, ok := c.Volumes["/data"]; !ok || len(c.Volumes) != 1 {
		t.Errorf("Volumes %v", c.Volumes)
	}
	if c.Healthcheck == nil || !reflect.DeepEqual(c.Healthcheck.Test, []string{"CMD", "true"}) ||
		c.Healthcheck.Interval != 5*time.Second || c.Healthcheck.Timeout != 3*time.Second || c.Healthcheck.Retries != 2 {
		t.Errorf("Healthcheck %+v", c.Healthcheck)
	}
	if !reflect.DeepEqual(c.Shell, []string{"/bin/sh", "-ec"}) || !reflect.DeepEqual(c.OnBuild, []string{"RUN echo onbuild"}) {
		t.Errorf("Shell %q OnBuild %q", c.Shell, c.OnBuild)
	}
	if !reflect.DeepEqual(c.Cmd, []string{"echo", "hi"}) || !reflect.DeepEqual(c.Entrypoint, []string{"/bin/sh", "-c"}) {
		t.Errorf("Cmd %q Entrypoint %q (a CMD set in the same stage survives ENTRYPOINT)", c.Cmd, c.Entrypoint)
	}
	// One history entry per instruction of the final stage, layer-bearing ones matching the layers.
	layers := 0
	for _, h := range cf.History {
		if !h.EmptyLayer {
			layers++
		}
	}
	if layers != len(cf.RootFS.DiffIDs) {
		t.Errorf("%d non-empty history entries for %d layers", layers, len(cf.RootFS.DiffIDs))
	}
	// The base has one layer; COPY, COPY, RUN, COPY, COPY, RUN, WORKDIR, RUN add seven more.
	if got := len(cf.RootFS.DiffIDs); got != 1+8 {
		t.Errorf("%d layers, want 9", got)
	}

	// skopeo, an independent reader, sees the same manifest digest the digest file names.
	info := testenv.SkopeoInspect(t, reg, dest)
	digest := strings.TrimSpace(readFile(t, ctx+"/digest"))
	if info["Digest"] != digest {
		t.Errorf("skopeo digest %v, --digest-file %q", info["Digest"], digest)
	}
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
