package integration

import (
	"archive/tar"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kilnbuild/kiln/internal/testenv"
)

// TestExecutorPodCluster runs Kiln's executor image as build pods of a real one-node cluster
// (kubelet, Debian's containerd and runc) with a pod's defaults, in one cluster for all of
// its parts: the seedapp build under the default capability set, seccomp profile and
// no_new_privs; a 1 GiB layer under a 256 MiB memory limit; ten pods at once sharing one
// repository and one --cache-dir (load_pods_test.go). Run one part with -run
// 'TestExecutorPodCluster/memory'.
func TestExecutorPodCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("a one-node cluster running build pods takes minutes; skipped with -short")
	}
	e := startExecutorCluster(t)
	t.Run("seedapp-pod-defaults", func(t *testing.T) { testSeedAppPod(t, e) })
	t.Run("memory", func(t *testing.T) { testLayerMemory(t, e) })
	t.Run("load", func(t *testing.T) { testLoadPods(t, e) })
}

// containerdDefaultCaps is the capability set containerd's CRI gives a container that asks
// for none (oci.WithDefaultCapabilities, as Docker's): CHOWN, DAC_OVERRIDE, FOWNER, FSETID,
// KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE,
// SETFCAP. CAP_SYS_ADMIN (bit 21) is not among them.
const containerdDefaultCaps = 0x00000000a80425fb

const capSysAdmin = 21

// testSeedAppPod builds the seedapp Dockerfile (groupadd, useradd, chown -R, USER) on a
// Debian base in a pod with the defaults, pushes it with the credentials of the mounted
// config.json, and checks that the kernel really applied the defaults to the executor.
func testSeedAppPod(t *testing.T, e *executorCluster) {
	base := testenv.PushDebian(t, e.reg, "base/debian:bookworm")
	ctx := writeContext(t, map[string]string{
		"Dockerfile": `ARG BASE
FROM ${BASE}
WORKDIR /app
LABEL maintainer="az"
ENV ASPNETCORE_Environment=Production \
  ASPNETCORE_URLS="http://+:8080" \
  DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1 \
  DOTNET_RUNNING_IN_CONTAINER=true
EXPOSE 8080/tcp
COPY /out ./
RUN groupadd -g 34000 az
RUN useradd -g az --uid 34000 az
RUN chown -R az:az /app
USER az
ENTRYPOINT ["./MinimalApi"]
`,
		"out/MinimalApi": "#!/bin/sh\necho hello\n",
		"out/lib1.so":    "lib1",
		"out/lib2.so":    "lib2",
	})
	dest := e.reg.Ref("it/seedapp:pod")
	res := e.runJobs(t, buildJob{name: "seedapp", context: ctx,
		args: []string{"--build-arg=BASE=" + base, "--destination=" + dest, "--insecure", "--insecure-pull"}})[0]
	t.Logf("seedapp pod: %s", containerTimings(res.pod))
	st := parsePodStatus(t, res.logs["build"])
	checkPodDefaults(t, st)

	fs := testenv.ExportImage(t, e.reg, dest)
	if !strings.Contains(string(file(t, fs, "etc/passwd").Content), "az:x:34000:34000:") {
		t.Errorf("/etc/passwd of %s lacks az:x:34000:34000:", dest)
	}
	if !strings.Contains(string(file(t, fs, "etc/group").Content), "az:x:34000:") {
		t.Errorf("/etc/group of %s lacks az:x:34000:", dest)
	}
	for _, p := range []string{"app", "app/MinimalApi", "app/lib1.so", "app/lib2.so"} {
		if f := file(t, fs, p); f.UID != 34000 || f.GID != 34000 {
			t.Errorf("%s owned by %d:%d after chown -R az:az, want 34000:34000", p, f.UID, f.GID)
		}
	}
	if f := file(t, fs, "app"); f.Type != tar.TypeDir {
		t.Errorf("/app has tar type %c, want a directory", f.Type)
	}
	cf := testenv.Config(t, e.reg, dest)
	if cf.Config.User != "az" || cf.Config.WorkingDir != "/app" || cf.Config.Labels["maintainer"] != "az" {
		t.Errorf("config of %s: User %q, WorkingDir %q, labels %v; want az, /app, maintainer=az",
			dest, cf.Config.User, cf.Config.WorkingDir, cf.Config.Labels)
	}
}

// checkPodDefaults checks the executor process's status as the probe read it in the pod:
// containerd's default capabilities (no CAP_SYS_ADMIN), no_new_privs, a seccomp filter.
func checkPodDefaults(t *testing.T, st podStatus) {
	t.Helper()
	capEff, err := strconv.ParseUint(st.status["CapEff"], 16, 64)
	if err != nil {
		t.Fatalf("CapEff %q of the executor process: %v", st.status["CapEff"], err)
	}
	if capEff != containerdDefaultCaps || capEff&(1<<capSysAdmin) != 0 {
		t.Errorf("the executor ran with CapEff %016x, want containerd's default set %016x (no CAP_SYS_ADMIN)", capEff, uint64(containerdDefaultCaps))
	}
	if st.status["NoNewPrivs"] != "1" {
		t.Errorf("the executor ran with NoNewPrivs %q, want 1 (allowPrivilegeEscalation: false)", st.status["NoNewPrivs"])
	}
	if st.status["Seccomp"] != "2" {
		t.Errorf("the executor ran with Seccomp %q, want 2 (a filter: seccompProfile RuntimeDefault)", st.status["Seccomp"])
	}
	t.Logf("executor process in the pod: %v", st.status)
}

// testLayerMemory builds a RUN that writes incompressible data, 128 MiB and then 1 GiB, each
// in a pod limited to 256 MiB: both must finish and push, and the executor's memory must
// not grow with the layer. The cgroup's peak usage (memory.peak on v2, max_usage_in_bytes on
// v1) counts page cache (the written file, the compressed layer and the pushed blob all pass
// through it), so it reaches the limit for both sizes and proves nothing; the check is on
// anonymous memory: the executor's peak RSS (VmHWM, kept by the kernel) and the container's
// anonymous memory (memory.stat), sampled while it runs.
func testLayerMemory(t *testing.T, e *executorCluster) {
	ctx := writeContext(t, map[string]string{"Dockerfile": `ARG BASE
FROM ${BASE}
ARG SIZE
RUN head -c ${SIZE} /dev/urandom > /data.bin && ls -l /data.bin
`})
	sizes := []struct {
		name  string
		bytes int64
	}{{"128m", 128 << 20}, {"1g", 1 << 30}}
	stats := map[string]podStatus{}
	for _, s := range sizes {
		dest := e.reg.Ref("it/big:" + s.name)
		res := e.runJobs(t, buildJob{name: "layer-" + s.name, context: ctx, memory: "256Mi",
			args: []string{"--build-arg=BASE=" + e.busybox, "--build-arg=SIZE=" + strconv.FormatInt(s.bytes, 10),
				"--destination=" + dest, "--insecure", "--insecure-pull"}})[0]
		st := parsePodStatus(t, res.logs["build"])
		stats[s.name] = st
		t.Logf("layer %s: build ran %s; executor VmHWM %d MiB, container peak anonymous memory %d MiB, cgroup v%d peak usage %d MiB of limit %d MiB",
			s.name, runTime(res.pod).Round(100*time.Millisecond), st.memory["vmhwm_kib"]>>10, st.memory["anon_peak"]>>20,
			st.memory["cgroup"], st.memory["usage_peak"]>>20, st.memory["limit"]>>20)
		if st.memory["limit"] != 256<<20 {
			t.Errorf("the container's memory limit is %d bytes, want 256 MiB: the test would prove nothing", st.memory["limit"])
		}
		checkLayerPushed(t, e, dest, s.bytes)
	}
	small, big := stats["128m"], stats["1g"]
	for _, m := range []struct {
		what       string
		small, big int64
	}{
		{"executor peak RSS (VmHWM)", small.memory["vmhwm_kib"] << 10, big.memory["vmhwm_kib"] << 10},
		{"container peak anonymous memory (sampled)", small.memory["anon_peak"], big.memory["anon_peak"]},
	} {
		if bound := m.small + m.small/4 + 64<<20; m.big > bound {
			t.Errorf("%s grows with the layer: %d MiB for 128 MiB, %d MiB for 1 GiB (bound %d MiB)",
				m.what, m.small>>20, m.big>>20, bound>>20)
		}
	}
}

// checkLayerPushed checks that dest's last layer holds at least size bytes (incompressible
// data does not shrink).
func checkLayerPushed(t *testing.T, e *executorCluster, dest string, size int64) {
	t.Helper()
	ref, err := name.ParseReference(dest, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref, e.reg.RemoteOptions()...)
	if err != nil {
		t.Fatalf("pull %s: %v", dest, err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatalf("manifest of %s: %v", dest, err)
	}
	if len(m.Layers) == 0 || m.Layers[len(m.Layers)-1].Size < size {
		t.Fatalf("%s: layers %v; want the last one at least %d bytes", dest, layerSizes(m.Layers), size)
	}
}

func layerSizes(layers []v1.Descriptor) []int64 {
	var sizes []int64
	for _, l := range layers {
		sizes = append(sizes, l.Size)
	}
	return sizes
}
