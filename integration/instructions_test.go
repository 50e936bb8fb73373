package integration

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/testenv"
)

// TestPodOnBuildAndImageSources: ONBUILD triggers stored in one build run when the image is
// used as a base; COPY --from an image reference; heredocs; SHELL honoured by RUN; ADD of a
// local archive (unpacked) and of a URL (not unpacked, checksum verified).
func TestPodOnBuildAndImageSources(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")

	parent := reg.Ref("it/onbuild-parent:1")
	ctx1 := writeContext(t, map[string]string{
		"Dockerfile": "ARG BASE\nFROM ${BASE}\nONBUILD RUN echo triggered > /onbuild.txt\nONBUILD COPY trigger-file /from-trigger\n",
	})
	buildInPod(t, ctx1, 0, "--build-arg", "BASE="+base, "--destination", parent, "--insecure", "--insecure-pull")
	if cf := testenv.Config(t, reg, parent); len(cf.Config.OnBuild) != 2 {
		t.Fatalf("parent OnBuild = %q", cf.Config.OnBuild)
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "remote content\n")
	}))
	defer srv.Close()
	ctx := writeContext(t, map[string]string{
		"Dockerfile": `ARG PARENT
ARG BASE
FROM ${PARENT}
COPY --from=` + base + ` /bin/busybox /copied-busybox
SHELL ["/bin/sh", "-e", "-c"]
RUN <<EOF
echo "line one" > /heredoc.txt
echo "line two" >> /heredoc.txt
EOF
RUN cat <<EOT > /inline.txt
inline body
EOT
COPY <<EOF /copied-heredoc.txt
copied heredoc
EOF
ADD archive.tar.gz /unpacked/
ADD ` + srv.URL + `/remote.txt /downloads/
RUN set -o | grep -q 'errexit.*on' && echo shell-ok > /shell.txt
COPY --exclude=*.log logs/ /logs/
`,
		"trigger-file":  "from the trigger\n",
		"logs/keep.txt": "kept\n",
		"logs/drop.log": "excluded\n",
	})
	writeTarGz(t, filepath.Join(ctx, "archive.tar.gz"), map[string]string{"a/one.txt": "one\n", "two.txt": "two\n"})
	dest := reg.Ref("it/onbuild-child:1")
	buildInPod(t, ctx, 0, "--build-arg", "PARENT="+parent, "--build-arg", "BASE="+base,
		"--destination", dest, "--insecure", "--insecure-pull")
	fs := testenv.ExportImage(t, reg, dest)
	for p, want := range map[string]string{
		"onbuild.txt":          "triggered\n",
		"from-trigger":         "from the trigger\n",
		"heredoc.txt":          "line one\nline two\n",
		"inline.txt":           "inline body\n",
		"copied-heredoc.txt":   "copied heredoc\n",
		"unpacked/a/one.txt":   "one\n",
		"unpacked/two.txt":     "two\n",
		"downloads/remote.txt": "remote content\n",
		"shell.txt":            "shell-ok\n",
		"logs/keep.txt":        "kept\n",
	} {
		if got := string(file(t, fs, p).Content); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	if e := file(t, fs, "downloads/remote.txt"); e.Mode&0o777 != 0o600 {
		t.Errorf("ADD of a URL: mode %o, want 600", e.Mode&0o777)
	}
	if e := file(t, fs, "copied-busybox"); e.Type != tar.TypeReg || e.Size < 100000 {
		t.Errorf("COPY --from=<image>: %+v", e)
	}
	absent(t, fs, "unpacked/archive.tar.gz", "downloads/remote.txt/remote.txt", "logs/drop.log")
	if cf := testenv.Config(t, reg, dest); len(cf.Config.OnBuild) != 0 {
		t.Errorf("ONBUILD triggers must not be inherited by the child: %q", cf.Config.OnBuild)
	}

	// A wrong checksum fails the ADD, naming the URL and the line.
	bad := writeContext(t, map[string]string{
		"Dockerfile": "ARG BASE\nFROM ${BASE}\nADD --checksum=sha256:0000000000000000000000000000000000000000000000000000000000000000 " + srv.URL + "/remote.txt /r.txt\n",
	})
	res := buildInPod(t, bad, 1, "--build-arg", "BASE="+base, "--no-push", "--insecure-pull")
	if !strings.Contains(res.Stderr, srv.URL+"/remote.txt") || !strings.Contains(res.Stderr, "Dockerfile:3") {
		t.Errorf("checksum failure should name the URL and line:\n%s", res.Stderr)
	}
}

// TestPodUsersAndMetadata: a USER that does not exist fails RUN with a clear error; a numeric
// USER without a passwd entry works; --label, --single-snapshot and --ignore-path behave as
// in Kaniko; /var/run stays out of the image.
func TestPodUsersAndMetadata(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")

	nosuch := writeContext(t, map[string]string{"Dockerfile": "ARG BASE\nFROM ${BASE}\nUSER nosuchuser\nRUN id\n"})
	res := buildInPod(t, nosuch, 1, "--build-arg", "BASE="+base, "--no-push", "--insecure-pull")
	if !strings.Contains(res.Stderr, "nosuchuser") || !strings.Contains(res.Stderr, "Dockerfile:4") {
		t.Errorf("unknown USER: error should name the user and line:\n%s", res.Stderr)
	}

	ctx := writeContext(t, map[string]string{"Dockerfile": `ARG BASE
FROM ${BASE}
USER 4321:4321
RUN id -u > /tmp/uid && id -g > /tmp/gid
USER root
RUN mkdir -p /var/run/kept-out /ignored-dir && echo x > /var/run/kept-out/f && echo y > /ignored-dir/f && echo z > /kept
`})
	dest := reg.Ref("it/users:1")
	buildInPod(t, ctx, 0, "--build-arg", "BASE="+base, "--destination", dest, "--insecure", "--insecure-pull",
		"--label", "team=build", "--label", "tier=ci", "--single-snapshot", "--ignore-path", "/ignored-dir")
	fs := testenv.ExportImage(t, reg, dest)
	if got := string(file(t, fs, "tmp/uid").Content); got != "4321\n" {
		t.Errorf("numeric USER: uid %q", got)
	}
	if got := string(file(t, fs, "tmp/gid").Content); got != "4321\n" {
		t.Errorf("numeric USER: gid %q", got)
	}
	file(t, fs, "kept")
	absent(t, fs, "var/run/kept-out", "var/run/kept-out/f", "ignored-dir/f", "ignored-dir")
	cf := testenv.Config(t, reg, dest)
	if !reflect.DeepEqual(map[string]string{"team": cf.Config.Labels["team"], "tier": cf.Config.Labels["tier"]},
		map[string]string{"team": "build", "tier": "ci"}) {
		t.Errorf("--label: %v", cf.Config.Labels)
	}
	if n := len(cf.RootFS.DiffIDs); n != 2 {
		t.Errorf("--single-snapshot: %d layers, want the base's 1 plus 1", n)
	}
}

func writeTarGz(t *testing.T, path string, files map[string]string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
}
