package integration

import (
	"archive/tar"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/testenv"
)

// TestPodDebianSeedApp is the build this project was made for, on a Debian base: the .NET
// runtime Dockerfile's shape (WORKDIR, LABEL, ENV, EXPOSE, COPY of a published app, groupadd,
// useradd, chown -R, USER) with bash and Debian's own user tools.
func TestPodDebianSeedApp(t *testing.T) {
	requireRoot(t)
	if testing.Short() {
		t.Skip("-short: the Debian base needs debootstrap")
	}
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushDebian(t, reg, "base/debian:bookworm")
	ctx := writeContext(t, map[string]string{
		"Dockerfile": `ARG BASE
FROM ${BASE}
WORKDIR /app
LABEL maintainer="az"
ENV ASPNETCORE_Environment=Production \
  ASPNETCORE_URLS="http://+:8080" \
  DOTNET_RUNNING_IN_CONTAINER=true
EXPOSE 8080/tcp
COPY /out ./
RUN groupadd -g 34000 az
RUN useradd -g az --uid 34000 az
RUN chown -R az:az /app
USER az
SHELL ["/bin/bash", "-c"]
RUN [[ "$(id -un)" == az ]] && echo "running as $(id -un) in $PWD" > /tmp/whoami
ENTRYPOINT ["./MinimalApi"]
`,
		"out/MinimalApi": "#!/bin/sh\necho hello\n",
		"out/lib1.so":    "lib1",
		"out/lib2.so":    "lib2",
	})
	dest := reg.Ref("it/seedapp:1")
	buildInPod(t, ctx, 0, "--build-arg", "BASE="+base, "--destination", dest, "--insecure", "--insecure-pull")
	fs := testenv.ExportImage(t, reg, dest)
	for _, p := range []string{"app/MinimalApi", "app/lib1.so", "app/lib2.so"} {
		if e := file(t, fs, p); e.UID != 34000 || e.GID != 34000 {
			t.Errorf("%s owned by %d:%d after chown -R az:az", p, e.UID, e.GID)
		}
	}
	if e := file(t, fs, "app"); e.Type != tar.TypeDir || e.UID != 34000 {
		t.Errorf("/app: %+v", e)
	}
	if !strings.Contains(string(file(t, fs, "etc/passwd").Content), "az:x:34000:34000:") {
		t.Errorf("/etc/passwd lacks az")
	}
	if got := string(file(t, fs, "tmp/whoami").Content); got != "running as az in /app\n" {
		t.Errorf("/tmp/whoami = %q", got)
	}
	cf := testenv.Config(t, reg, dest)
	if cf.Config.User != "az" || cf.Config.WorkingDir != "/app" || cf.Config.Labels["maintainer"] != "az" {
		t.Errorf("config %+v", cf.Config)
	}
}
