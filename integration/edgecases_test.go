package integration

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/testenv"
)

// TestPodFilesystemEdgeCases covers what trips image builders up: destinations through
// symlinks (also one pointing at /), files deleted then added again, a directory replaced by a
// file and the reverse, chown of created parents, and a multi-stage copy of a whole root.
func TestPodFilesystemEdgeCases(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	ctx := writeContext(t, map[string]string{
		"Dockerfile": `ARG BASE
FROM ${BASE} AS first
RUN echo first > /marker

FROM ${BASE}
RUN mkdir -p /opt/real && ln -s /opt/real /app && ln -s / /rootlink && mkdir /d && echo in-d > /d/f \
 && echo old > /etc/motd && echo f > /file-then-dir && mkdir -p /keep/sub && echo k > /keep/sub/k
COPY f.txt /app/
COPY f.txt /rootlink/through-root/
RUN rm /etc/motd
COPY motd /etc/motd
RUN rm -rf /d && echo now-a-file > /d && rm /file-then-dir && mkdir /file-then-dir && echo inside > /file-then-dir/x
RUN rm -rf /keep && mkdir -p /keep/other && echo o > /keep/other/o
COPY --chown=nobody:nobody f.txt /newparent/sub/f.txt
COPY --from=first / /copied/
`,
		"f.txt": "payload\n",
		"motd":  "new motd\n",
	})
	dest := reg.Ref("it/edges:1")
	buildInPod(t, ctx, 0, "--build-arg", "BASE="+base, "--destination", dest, "--insecure", "--insecure-pull")
	fs := testenv.ExportImage(t, reg, dest)

	if e := file(t, fs, "app"); e.Type != tar.TypeSymlink || e.Linkname != "/opt/real" {
		t.Errorf("/app must stay a symlink to /opt/real, got %+v", e)
	}
	if e := file(t, fs, "opt/real/f.txt"); string(e.Content) != "payload\n" {
		t.Errorf("COPY through the /app symlink: %q", e.Content)
	}
	if e := file(t, fs, "through-root/f.txt"); string(e.Content) != "payload\n" {
		t.Errorf("COPY through a symlink to / must land inside the root: %q", e.Content)
	}
	if e := file(t, fs, "etc/motd"); string(e.Content) != "new motd\n" {
		t.Errorf("deleted then re-added /etc/motd: %q", e.Content)
	}
	if e := file(t, fs, "d"); e.Type != tar.TypeReg || string(e.Content) != "now-a-file\n" {
		t.Errorf("/d replaced by a file: %+v", e)
	}
	absent(t, fs, "d/f", "keep/sub", "keep/sub/k")
	if e := file(t, fs, "file-then-dir"); e.Type != tar.TypeDir {
		t.Errorf("/file-then-dir replaced by a dir: %+v", e)
	}
	file(t, fs, "file-then-dir/x")
	file(t, fs, "keep/other/o")
	if e := file(t, fs, "newparent/sub/f.txt"); e.UID != 65534 || e.GID != 65534 {
		t.Errorf("--chown=nobody:nobody file owner %d:%d", e.UID, e.GID)
	}
	file(t, fs, "newparent/sub")
	if e := file(t, fs, "copied/marker"); string(e.Content) != "first\n" {
		t.Errorf("COPY --from=first / : marker %q", e.Content)
	}
	file(t, fs, "copied/bin/busybox")
	absent(t, fs, "copied/kaniko", "copied/workspace", "copied/copied", "marker")
}

// TestPodOutputsAndReproducible writes the image as a tarball and an OCI layout without
// pushing, checks both with skopeo and umoci, and builds twice with --reproducible to get the
// same digest.
func TestPodOutputsAndReproducible(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	ctx := writeContext(t, map[string]string{
		"Dockerfile": "ARG BASE\nFROM ${BASE}\nCOPY hello /hello\nRUN echo built > /built\nCMD [\"cat\", \"/hello\"]\n",
		"hello":      "hi\n",
	})
	var digests []string
	for i := 0; i < 2; i++ {
		out := filepath.Join(ctx, "out")
		os.RemoveAll(out)
		if err := os.MkdirAll(out, 0o755); err != nil {
			t.Fatal(err)
		}
		buildInPod(t, ctx, 0, "--build-arg", "BASE="+base, "--insecure-pull", "--no-push", "--reproducible",
			"--destination", reg.Ref("it/outputs:1"),
			"--tar-path", "/workspace/out/image.tar", "--oci-layout-path", "/workspace/out/oci",
			"--digest-file", "/workspace/out/digest",
			"--image-name-with-digest-file", "/workspace/out/name-digest")
		digest := strings.TrimSpace(readFile(t, filepath.Join(out, "digest")))
		if !strings.HasPrefix(digest, "sha256:") {
			t.Fatalf("digest file holds %q", digest)
		}
		digests = append(digests, digest)
		if got := strings.TrimSpace(readFile(t, filepath.Join(out, "name-digest"))); got != reg.Ref("it/outputs")+"@"+digest {
			t.Errorf("image name with digest file: %q", got)
		}
		info := testenv.SkopeoInspectArchive(t, filepath.Join(out, "image.tar"))
		if layers, _ := info["Layers"].([]any); len(layers) != 3 {
			t.Errorf("skopeo sees %d layers in the tarball, want 3: %v", len(layers), info["Layers"])
		}
		rootfs := testenv.UmociUnpack(t, filepath.Join(out, "oci"), "1")
		if b, err := os.ReadFile(filepath.Join(rootfs, "built")); err != nil || string(b) != "built\n" {
			t.Errorf("umoci unpack: /built = %q, %v", b, err)
		}
	}
	if digests[0] != digests[1] {
		t.Errorf("--reproducible gave two digests: %s and %s", digests[0], digests[1])
	}
	// Nothing was pushed.
	if _, err := testenv.TryConfig(reg, reg.Ref("it/outputs:1")); err == nil {
		t.Errorf("--no-push pushed the image")
	}
}

// TestPodFailingRun: a failing RUN stops the build with the file, line and exit code (which
// becomes the executor's, as with Kaniko), and
// nothing is pushed under the destination tag.
func TestPodFailingRun(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	ctx := writeContext(t, map[string]string{
		"Dockerfile": "ARG BASE\nFROM ${BASE}\nRUN echo before\nRUN echo failing && exit 7\nRUN echo never-here\n",
	})
	dest := reg.Ref("it/failing:1")
	res := buildInPod(t, ctx, 7, "--build-arg", "BASE="+base, "--destination", dest, "--insecure", "--insecure-pull")
	for _, want := range []string{"Dockerfile:4", "exit 7", "non-zero code: 7"} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("error output lacks %q:\n%s", want, res.Stderr)
		}
	}
	if strings.Contains(res.Stdout+res.Stderr, "never-here") {
		t.Errorf("the build went on after the failing RUN")
	}
	if _, err := testenv.TryConfig(reg, dest); err == nil {
		t.Errorf("an image was pushed despite the failure")
	}
}

// TestPodTargetStage builds a middle stage with --target: later stages do not run.
func TestPodTargetStage(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	ctx := writeContext(t, map[string]string{
		"Dockerfile": "ARG BASE\nFROM ${BASE} AS one\nRUN echo one > /one\n" +
			"FROM one AS two\nRUN echo two > /two\nLABEL stage=two\n" +
			"FROM ${BASE} AS three\nRUN echo three-ran && exit 1\n",
	})
	dest := reg.Ref("it/target:1")
	res := buildInPod(t, ctx, 0, "--build-arg", "BASE="+base, "--target", "two", "--destination", dest, "--insecure", "--insecure-pull")
	if strings.Contains(res.Stdout, "three-ran") {
		t.Errorf("stage three ran although the target is two")
	}
	fs := testenv.ExportImage(t, reg, dest)
	file(t, fs, "one")
	file(t, fs, "two")
	if cf := testenv.Config(t, reg, dest); cf.Config.Labels["stage"] != "two" {
		t.Errorf("labels %v", cf.Config.Labels)
	}
}
