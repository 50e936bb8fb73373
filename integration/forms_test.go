package integration

import (
	"testing"

	"github.com/kilnbuild/kiln/internal/testenv"
)

// TestPodExecFormIndexesAndDefaults: RUN in exec form, COPY --from a stage given by index,
// ${VAR:-default} in ENV, and EXPOSE of a port range.
func TestPodExecFormIndexesAndDefaults(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	ctx := writeContext(t, map[string]string{"Dockerfile": `ARG BASE
FROM ${BASE}
RUN ["/bin/sh", "-c", "echo exec-form > /exec.txt"]
FROM ${BASE}
ARG NAME
ARG SET=given
ENV GREETING=${NAME:-nobody} OTHER=${SET:+was-set}
COPY --from=0 /exec.txt /from-index.txt
EXPOSE 7000-7002/udp
RUN echo "$GREETING $OTHER" > /greeting.txt
`})
	dest := reg.Ref("it/forms:1")
	buildInPod(t, ctx, 0, "--build-arg", "BASE="+base, "--destination", dest, "--insecure", "--insecure-pull")
	fs := testenv.ExportImage(t, reg, dest)
	if got := string(file(t, fs, "from-index.txt").Content); got != "exec-form\n" {
		t.Errorf("COPY --from=0 of an exec-form RUN's file: %q", got)
	}
	if got := string(file(t, fs, "greeting.txt").Content); got != "nobody was-set\n" {
		t.Errorf("${NAME:-nobody} ${SET:+was-set}: %q", got)
	}
	ports := testenv.Config(t, reg, dest).Config.ExposedPorts
	for _, p := range []string{"7000/udp", "7001/udp", "7002/udp"} {
		if _, ok := ports[p]; !ok {
			t.Errorf("EXPOSE 7000-7002/udp: %s missing from %v", p, ports)
		}
	}
}
