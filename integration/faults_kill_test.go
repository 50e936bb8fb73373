package integration

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/testenv"
)

// TestFaultKilledMidPush SIGKILLs the executor (the pod's pid 1) while it pushes a 24 MiB layer
// through a slow link, then runs the same build again in a new pod, as a retried CI job does.
// The first run leaves no tag behind; the second succeeds and does not upload again the blobs
// the first one finished: the registry's access log (the proxy's) shows them found by HEAD and
// never PUT again.
func TestFaultKilledMidPush(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	proxy := startBreakProxy(t, reg)
	ctx := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + base + "\nCOPY small.txt /small.txt\nCOPY data.bin /data.bin\n",
		"small.txt":  "a small layer that is uploaded before the kill\n",
		"data.bin":   string(randomData(6, 24*mib)),
	})
	dest := proxy.Addr + "/it/sigkill:1"
	// --reproducible: the second run makes the same layers, so the first run's uploads count.
	pod := registryPod(t, ctx, "--destination", dest, "--insecure", "--insecure-pull", "--reproducible",
		"--skip-push-permission-check")

	proxy.slowUploads(2 * mib) // 24 MiB take ~12 s: the progress line comes after 2 s
	killed := pod
	killed.Signal = &testenv.PodSignal{Signal: syscall.SIGKILL, After: "Pushing " + dest + ":"}
	killed.Timeout = 2 * time.Minute
	res := testenv.RunPod(t, killed)
	// unshare reports a child killed by SIGKILL as exit code 1 ("sigprocmask unblock failed"):
	// what shows the kill is that the executor never logged an end of its own.
	if res.ExitCode == 0 || strings.Contains(res.Stderr, "ERRO") || strings.Contains(res.Stderr, "Pushed ") {
		t.Fatalf("exit code %d: the executor was not killed mid-push\n%s", res.ExitCode, res.Stderr)
	}
	notPushed(t, reg, reg.Ref("it/sigkill:1"))
	first := uploadedDigests(proxy.log())
	if len(first) == 0 {
		t.Fatalf("no blob upload finished before the kill: the test proves nothing")
	}

	proxy.slowUploads(0)
	res = runPodWant(t, pod, true)
	reqs := proxy.log()
	again := uploadedDigests(reqs)
	for d := range first {
		if again[d] {
			t.Errorf("blob %s, uploaded before the kill, was uploaded again", d)
		}
		if !answered(reqs, http.MethodHead, "/blobs/"+d, http.StatusOK) {
			t.Errorf("blob %s was not checked (HEAD) before being skipped", d)
		}
	}
	t.Logf("blobs finished before the kill and skipped after it: %d; uploaded by the second run: %d", len(first), len(again))
	if len(again) == 0 {
		t.Errorf("the second run uploaded nothing, but the big layer was cut off by the kill")
	}
	manifestLast(t, reqs)
	verifyImage(t, reg, reg.Ref("it/sigkill:1"))
	if e := file(t, testenv.ExportImage(t, reg, reg.Ref("it/sigkill:1")), "small.txt"); !strings.Contains(string(e.Content), "small layer") {
		t.Errorf("/small.txt = %q", e.Content)
	}
}

// answered reports whether reqs hold a request with method whose path ends in suffix, answered
// with status.
func answered(reqs []proxiedRequest, method, suffix string, status int) bool {
	for _, r := range reqs {
		if r.Method == method && strings.HasSuffix(r.Path, suffix) && r.Status == status {
			return true
		}
	}
	return false
}
