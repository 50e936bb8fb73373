package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/internal/testenv"
	"github.com/kilnbuild/kiln/registry"
)

// Dockerfiles that Kaniko v1.24 builds and Kiln built differently (issue 8): each is built as
// a build pod (the executor binary) and in directory mode (the library), and both images must
// be what Kaniko makes.

// compatBuild is one image built one way, as the registry serves it.
type compatBuild struct {
	cfg *v1.ConfigFile
	fs  map[string]testenv.FileEntry
}

// buildBothWays builds the Dockerfile in ctxDir as a pod and through the library, pushes both
// images to reg and reads them back. args are build args (KEY=VALUE).
func buildBothWays(t *testing.T, reg *testenv.Registry, ctxDir, target string, args ...string) map[string]compatBuild {
	t.Helper()
	out := map[string]compatBuild{}
	repo := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))

	podRef := reg.Ref("compat/" + repo + "-pod:1")
	podArgs := []string{"--destination", podRef, "--insecure", "--insecure-pull"}
	if target != "" {
		podArgs = append(podArgs, "--target", target)
	}
	for _, a := range args {
		podArgs = append(podArgs, "--build-arg", a)
	}
	buildInPod(t, ctxDir, 0, podArgs...)
	out["pod"] = compatBuild{cfg: testenv.Config(t, reg, podRef), fs: testenv.ExportImage(t, reg, podRef)}

	buildArgs := dockerfile.BuildArgs{}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		buildArgs[k] = &v
	}
	data, err := os.ReadFile(filepath.Join(ctxDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	img, err := builder.Build(context.Background(), dockerfile.Source{Name: "Dockerfile", Data: data},
		builder.WithDirectoryRoot(filepath.Join(t.TempDir(), "rootfs")), builder.WithWorkDir(filepath.Join(t.TempDir(), "work")),
		builder.WithContextDir(ctxDir), builder.WithBuildArgs(buildArgs), builder.WithTarget(target),
		builder.WithPullOptions(registry.WithInsecureAll(true)), builder.WithOutput(&log))
	if err != nil {
		t.Fatalf("directory mode: %v\n%s", err, log.String())
	}
	dirRef := reg.Ref("compat/" + repo + "-dir:1")
	if _, err := registry.Push(context.Background(), img, []string{dirRef}, registry.WithInsecureAll(true)); err != nil {
		t.Fatal(err)
	}
	out["dir"] = compatBuild{cfg: testenv.Config(t, reg, dirRef), fs: testenv.ExportImage(t, reg, dirRef)}
	return out
}

// contextWithBusybox writes files into a fresh context with the host's static busybox at
// busybox, for FROM scratch stages that RUN something.
func contextWithBusybox(t *testing.T, files map[string]string) string {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("needs a static /bin/busybox (busybox-static, installed by scripts/deps.sh): %v", err)
	}
	dir := writeContext(t, files)
	if err := os.WriteFile(filepath.Join(dir, "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestCompatScratchPathAndUserRoot: FROM scratch gets Docker's default PATH in its Env (bug 1),
// and USER root or numeric ids resolve without /etc/passwd in WORKDIR, RUN and COPY --chown
// (bug 5).
func TestCompatScratchPathAndUserRoot(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	ctxDir := contextWithBusybox(t, map[string]string{
		"Dockerfile": `FROM scratch
COPY busybox /bin/busybox
USER root
WORKDIR /x
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox id -u > ids && /bin/busybox id -g >> ids && echo \"$PATH\" > path"]
COPY --chown=root:root f /x/owned-root
COPY --chown=root f /x/owned-root-alone
USER 1234:5678
WORKDIR /y
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox id -u > /y/ids && /bin/busybox id -g >> /y/ids"]
USER 4321
WORKDIR /z
ENV A=1
`,
		"f": "f\n",
	})
	for mode, b := range buildBothWays(t, reg, ctxDir, "") {
		t.Run(mode, func(t *testing.T) {
			if want := []string{dockerPath, "A=1"}; !slices.Equal(b.cfg.Config.Env, want) {
				t.Errorf("Env = %q, want %q", b.cfg.Config.Env, want)
			}
			if got := string(file(t, b.fs, "x/ids").Content); got != "0\n0\n" {
				t.Errorf("USER root: id -u, id -g = %q", got)
			}
			if got := string(file(t, b.fs, "x/path").Content); got != strings.TrimPrefix(dockerPath, "PATH=")+"\n" {
				t.Errorf("RUN's PATH = %q", got)
			}
			if got := string(file(t, b.fs, "y/ids").Content); got != "1234\n5678\n" {
				t.Errorf("USER 1234:5678: id -u, id -g = %q", got)
			}
			for p, owner := range map[string][2]int{"x": {0, 0}, "x/owned-root": {0, 0}, "x/owned-root-alone": {0, 0},
				"y": {1234, 5678}, "z": {4321, 0}} {
				if e := file(t, b.fs, p); e.UID != owner[0] || e.GID != owner[1] {
					t.Errorf("/%s owned by %d:%d, want %d:%d", p, e.UID, e.GID, owner[0], owner[1])
				}
			}
			absent(t, b.fs, "etc/passwd")
		})
	}
}

const dockerPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// TestCompatStageArgsAndArgNames: a stage built FROM another sees its ARGs, transitively
// (Kaniko's Dockerfile_test_multistage_args_issue_1911, bug 2), and ARG names are expanded so
// `ARG ${src}=...` declares the variable src names (bug 3).
func TestCompatStageArgsAndArgNames(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	ctxDir := writeContext(t, map[string]string{
		"Dockerfile": `ARG BASE
FROM ${BASE} AS base
ARG NAME="base"
RUN echo "base:$NAME" > /base.txt

FROM base AS dev
ARG NAME="$NAME-dev"
RUN echo "dev:$NAME" > /dev.txt

FROM dev AS custom
ARG NAME
RUN echo "custom:$NAME" > /custom.txt
ENV src file3
ARG ${src}=context/bar/baz
COPY $file3 /baz
RUN echo "file3=$file3" > /file3.txt
`,
		"context/bar/baz": "baz\n",
		"context/other":   "other\n",
	})
	for mode, b := range buildBothWays(t, reg, ctxDir, "", "BASE="+base) {
		t.Run(mode, func(t *testing.T) {
			for p, want := range map[string]string{
				"base.txt": "base:base\n", "dev.txt": "dev:base-dev\n", "custom.txt": "custom:base-dev\n",
				"baz": "baz\n", "file3.txt": "file3=context/bar/baz\n",
			} {
				if got := string(file(t, b.fs, p).Content); got != want {
					t.Errorf("/%s = %q, want %q", p, got, want)
				}
			}
			absent(t, b.fs, "context", "other", "baz/context")
		})
	}
}

// TestCompatEmptyCopySource: a COPY source that expands to nothing fails the build naming the
// Dockerfile line; nothing is pushed, and the context is never copied whole (bug 3).
func TestCompatEmptyCopySource(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	ctxDir := writeContext(t, map[string]string{
		"Dockerfile": "FROM scratch\nARG unset\nCOPY $unset /baz\n",
		"secret.txt": "must not be copied\n",
	})
	dest := reg.Ref("compat/empty-source:1")
	res := buildInPod(t, ctxDir, 1, "--destination", dest, "--insecure")
	if !strings.Contains(res.Stderr, "Dockerfile:3") || !strings.Contains(res.Stderr, "empty") {
		t.Errorf("the error must name Dockerfile:3 and the empty source:\n%s", res.Stderr)
	}
	if _, err := testenv.TryConfig(reg, dest); err == nil {
		t.Errorf("an image was pushed")
	}
	_, err := builder.Build(context.Background(), dockerfile.Source{Name: "Dockerfile", Data: []byte(readFile(t, filepath.Join(ctxDir, "Dockerfile")))},
		builder.WithDirectoryRoot(filepath.Join(t.TempDir(), "rootfs")), builder.WithWorkDir(filepath.Join(t.TempDir(), "work")),
		builder.WithContextDir(ctxDir))
	if err == nil || !strings.Contains(err.Error(), "Dockerfile:3") {
		t.Errorf("directory mode: %v, want an error naming Dockerfile:3", err)
	}
}

// TestCompatVolume builds Kaniko's Dockerfile_test_volume_2 and _volume (on busybox): VOLUME
// creates its directories (and parents), which the next instruction's layer records; what a
// RUN writes below a volume path stays out of the image, COPY/ADD/WORKDIR there stay in it; a
// VOLUME with nothing after it adds no directory (bug 4). A later stage FROM it does not see
// the discarded files either.
func TestCompatVolume(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	ctxDir := writeContext(t, map[string]string{
		"Dockerfile": `ARG BASE
FROM ${BASE} AS vol
VOLUME /foo1
RUN echo "hello" > /foo1/hello && cat /foo1/hello > /seen-in-run
WORKDIR /foo1/bar
ADD context/foo /foo1/foo
COPY context/foo /foo1/foo2
RUN mkdir /bar1 && ls /foo1 > /listed
VOLUME /foo2
VOLUME /foo3
RUN echo "bar2"
VOLUME /foo4
RUN mkdir /bar3
VOLUME /foo/bar /tmp /qux/quux
ENV VOL /baz/bat
VOLUME ["${VOL}"]
RUN echo "hello again" > /tmp/hey && echo changed > /bin/in-base-ok
VOLUME /foo5

FROM vol
RUN ls -a /foo1 /tmp > /next-stage-sees
`,
		"context/foo": "foo\n",
	})
	for mode, b := range buildBothWays(t, reg, ctxDir, "", "BASE="+base) {
		t.Run(mode, func(t *testing.T) {
			for _, v := range []string{"/foo1", "/foo2", "/foo3", "/foo4", "/foo5", "/foo/bar", "/tmp", "/qux/quux", "/baz/bat"} {
				if _, ok := b.cfg.Config.Volumes[v]; !ok {
					t.Errorf("config Volumes %v lacks %s", b.cfg.Config.Volumes, v)
				}
			}
			for _, d := range []string{"foo1", "foo1/bar", "bar1", "foo2", "foo3", "foo4", "bar3", "foo", "foo/bar", "qux", "qux/quux", "baz", "baz/bat"} {
				if e := file(t, b.fs, d); e.Type != tar.TypeDir || e.Mode&0o7777 != 0o755 || e.UID != 0 || e.GID != 0 {
					t.Errorf("/%s: %+v, want a root-owned 0755 directory", d, e)
				}
			}
			absent(t, b.fs, "foo1/hello", "tmp/hey", "foo5")
			for p, want := range map[string]string{
				"seen-in-run": "hello\n", "foo1/foo": "foo\n", "foo1/foo2": "foo\n",
				"listed": "bar\nfoo\nfoo2\nhello\n", "bin/in-base-ok": "changed\n",
				// The next stage starts from the image: the discarded files are not there.
				"next-stage-sees": "/foo1:\n.\n..\nbar\nfoo\nfoo2\n\n/tmp:\n.\n..\n",
			} {
				if got := string(file(t, b.fs, p).Content); got != want {
					t.Errorf("/%s = %q, want %q", p, got, want)
				}
			}
		})
	}
}

// chrootScript runs the library example chrooted into $JAIL, a plain directory (not a mount
// point) with /proc, /sys and /dev mounted, as CI tools that chroot their jobs set it up; the
// mounts live in the script's own mount namespace.
const chrootScript = `set -e
mount --make-rprivate /
mount -t proc proc "$JAIL/proc"
mount --rbind /sys "$JAIL/sys"
mount --rbind /dev "$JAIL/dev"
exec chroot "$JAIL" /library -context /ctx -root /rootfs -oci /oci
`

// TestLibraryInsideChroot: a program embedding the builder, run chrooted into a directory that
// is not a mount point, builds a Dockerfile whose RUN steps run in directory mode (bug 6: every
// RUN failed with "make / rprivate: invalid argument").
func TestLibraryInsideChroot(t *testing.T) {
	requireRoot(t)
	for _, tool := range []string{"unshare", "chroot", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("needs %s (util-linux, coreutils): %v", tool, err)
		}
	}
	jail := filepath.Join(t.TempDir(), "jail")
	for _, d := range []string{"proc", "sys", "dev", "tmp", "ctx"} {
		if err := os.MkdirAll(filepath.Join(jail, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command("go", "build", "-o", filepath.Join(jail, "library"), "./examples/library")
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building examples/library: %v\n%s", err, out)
	}
	ctxDir := contextWithBusybox(t, map[string]string{"Dockerfile": `FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "echo made-in-chroot > /made && /bin/busybox mkdir /d"]
RUN ["/bin/busybox", "cat", "/made"]
`})
	if out, err := exec.Command("cp", "-a", ctxDir+"/.", filepath.Join(jail, "ctx")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	cmd := exec.Command("unshare", "--mount", "--propagation", "unchanged", "sh", "-c", chrootScript)
	cmd.Env = append(os.Environ(), "JAIL="+jail)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("the library in a chroot: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "made-in-chroot") {
		t.Errorf("RUN output missing:\n%s", stdout.String())
	}
	idx, err := layout.ImageIndexFromPath(filepath.Join(jail, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) != 1 {
		t.Fatalf("OCI layout index: %v %v", m, err)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	files := exportImage(t, img)
	if files["made"] != "made-in-chroot\n" {
		t.Errorf("/made = %q", files["made"])
	}
	if _, ok := files["d"]; !ok {
		t.Errorf("/d missing from the image")
	}
	for _, p := range []string{"proc", "sys", "dev", "etc/hosts"} {
		if _, ok := files[p]; ok {
			t.Errorf("/%s: a RUN mount point leaked into the image", p)
		}
	}
}
