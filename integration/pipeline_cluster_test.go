package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/testenv"
	"github.com/kilnbuild/kiln/internal/testenv/gitserver"
	"github.com/kilnbuild/kiln/internal/testenv/kube"
)

// TestPipelineClusterJob runs examples/hello's pipeline as the Job that `pipeline render --for
// job` writes, in a real one-node cluster (kube.StartCluster: kubelet, containerd, runc). Every
// service the pod uses is bound to the node address: the registry (base images, the Go stage
// image, Kiln's executor image with /kaniko/pipeline, and the pushed app) and a git server
// holding a copy of examples/hello. The rendered rbac.yaml is applied, regcred is a real
// dockerconfigjson Secret, and job.yaml is submitted as written. Build N: the Job checks the
// code out, compiles it in the Go image, builds and pushes hello:N with the executor in pod
// mode, and deploys it with the pod's service account; the Deployment becomes Available with
// its probes passing and the Service answers from the host through kube-proxy. Build N+1: the
// image stage takes its layers from the cache and the Deployment rolls to hello:N+1.
func TestPipelineClusterJob(t *testing.T) {
	if testing.Short() {
		t.Skip("a one-node cluster running two pipeline Jobs takes minutes; skipped with -short")
	}
	requireRoot(t)
	ip, err := kube.HostIP()
	if err != nil {
		t.Skipf("pods need an address of this machine to reach the registry and git server: %v", err)
	}
	node := ip.String()
	clock := newPhaseClock(t)

	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Host: node})
	pipelineBin := testenv.BuildPipeline(t)
	// The executor image is assembled in-process from this tree's binaries; building
	// deploy/Dockerfile with the executor itself is TestPodBuildsItsOwnImage's job.
	executorImage := testenv.PushExecutorImage(t, reg, "kiln/executor:debug", testenv.BuildExecutor(t), pipelineBin)
	checkExecutorConfig(t, testenv.Config(t, reg, executorImage))
	// The pipeline's Job runs the executor and the pipeline; the warmer is not in this image.
	checkExecutorFiles(t, testenv.ExportImage(t, reg, executorImage), imageBinaries[:2])
	base := testenv.PushBusybox(t, reg, "base/busybox:1")
	goImage := testenv.PushGoToolchain(t, reg, "base/golang:local")
	clock.phase("binaries and images pushed to " + reg.Addr)

	git := gitserver.ServeOn(t, node)
	work := gitserver.NewRepo(t)
	copyExampleTree(t, filepath.Join(repoRoot(t), "examples/hello"), work)
	gitserver.Commit(t, work, "examples/hello", nil)
	git.Publish(t, work, "hello.git")
	clock.phase("git server on " + git.Host)

	c := kube.StartCluster(t, kube.ClusterOptions{InsecureRegistries: []string{reg.Addr}})
	ns := c.Namespace(t)
	clock.phase("cluster ready, namespace " + ns)

	p := &clusterPipeline{
		t: t, client: c.Client(t), ns: ns, bin: pipelineBin, reg: reg,
		file: filepath.Join(work, "kiln-pipeline.yaml"),
		vars: []string{
			"GIT_URL=" + git.URL + "/hello.git",
			"EXECUTOR_IMAGE=" + executorImage,
			"GO_IMAGE=" + goImage,
			"BASE_IMAGE=" + base,
			"REGISTRY=" + reg.Ref("demo"),
			"INSECURE_REGISTRY=" + reg.Addr,
			"NAMESPACE=" + ns,
		},
	}

	const first = 7
	b1 := p.run(first)
	clock.phase(fmt.Sprintf("build %d: Job succeeded", first))
	if n := strings.Count(b1.logs["image"], cacheMissLine); n == 0 {
		t.Errorf("build %d ran with an empty cache, yet its image stage logged no cache miss:\n%s", first, b1.logs["image"])
	}
	// The deploy container applies with the pod's service account, under the rendered Role.
	account := "as system:serviceaccount:" + ns + ":" + p.account
	wantLines(t, b1, "deploy", account, "deployment.apps/hello created", "service/hello created")
	p.checkDeployed(first)
	clock.phase(fmt.Sprintf("build %d: Deployment Available, Service answers", first))

	b2 := p.run(first + 1)
	clock.phase(fmt.Sprintf("build %d: Job succeeded", first+1))
	hits, misses := strings.Count(b2.logs["image"], cacheHitLine), strings.Count(b2.logs["image"], cacheMissLine)
	if hits == 0 || misses != 0 {
		t.Errorf("build %d of unchanged sources: %d cache hits, %d misses in the image stage; want only hits:\n%s",
			first+1, hits, misses, b2.logs["image"])
	}
	t.Logf("build %d: the image stage took %d layers from the cache", first+1, hits)
	wantLines(t, b2, "deploy", account, "deployment.apps/hello configured", "service/hello unchanged")
	p.checkDeployed(first + 1)
	p.checkRolledOver(first, first+1)
	clock.phase(fmt.Sprintf("build %d: rolled out, Service answers", first+1))
	t.Logf("cluster memory at the end: %d MiB", c.RSS()>>20)
}

// What the executor logs for a cached step ("[2/4] cache hit for key 1a2b3c...").
const (
	cacheHitLine  = "] cache hit for key "
	cacheMissLine = "] cache miss for key "
)

// wantLines fails unless the log of the build's container holds each line.
func wantLines(t *testing.T, b jobResult, container string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(b.logs[container], l) {
			t.Errorf("job %s: the %s container's log lacks %q:\n%s", b.name, container, l, b.logs[container])
		}
	}
}

// phaseClock logs how long each phase of a long test took, and the total.
type phaseClock struct {
	t           *testing.T
	start, last time.Time
}

func newPhaseClock(t *testing.T) *phaseClock {
	now := time.Now()
	return &phaseClock{t: t, start: now, last: now}
}

func (c *phaseClock) phase(what string) {
	c.t.Helper()
	now := time.Now()
	c.t.Logf("timing: %s in %s (total %s)", what, now.Sub(c.last).Round(100*time.Millisecond), now.Sub(c.start).Round(time.Second))
	c.last = now
}

// copyExampleTree copies the regular files and directories under src into dst (which exists).
func copyExampleTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, 0o644)
		default:
			return fmt.Errorf("%s: only files and directories are copied", p)
		}
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}
