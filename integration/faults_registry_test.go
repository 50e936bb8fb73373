package integration

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/testenv"
)

// TestFaultRegistryMidPush breaks the push of a 24 MiB layer: connections reset in the middle
// of the blob, and the registry killed in the middle of the upload. Without --push-retry the
// build fails naming the destination, and the tag still points at the image it had; with
// --push-retry the push completes once the registry answers again (restarted on the same port
// and storage). The manifest, which moves the tag, is pushed only after every blob.
func TestFaultRegistryMidPush(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	ctx := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + base + "\nCOPY data.bin /data.bin\nRUN echo second > /second\n",
		"data.bin":   string(randomData(5, 24*mib)),
	})
	// The tags start out on another image, which a failed push must leave them on.
	old := pushWithLayer(t, reg, base, "it/old:1", tarLayer(t, map[string][]byte{"old": []byte("old image\n")}))
	oldDigest := digestOf(t, reg, old)
	tagOld := func(repoTag string) string {
		ref := pushRef(t, reg, repoTag, pullRef(t, reg, old))
		if digestOf(t, reg, ref) != oldDigest {
			t.Fatalf("could not point %s at the old image", ref)
		}
		return ref
	}

	t.Run("connections reset mid-blob", func(t *testing.T) {
		proxy := startBreakProxy(t, reg)
		ref := tagOld("it/reset:1")
		dest := proxy.Addr + "/it/reset:1"
		build := func(extra ...string) testenv.PodResult {
			return testenv.RunPod(t, registryPod(t, ctx, append([]string{"--destination", dest, "--insecure",
				"--insecure-pull", "--skip-push-permission-check"}, extra...)...))
		}

		proxy.resetUploads(1000, 4*mib) // every upload of a big blob
		res := build()
		if res.ExitCode == 0 {
			t.Fatalf("the push succeeded through resetting connections:\n%s", res.Stderr)
		}
		for _, want := range []string{"push " + dest, "connection reset", "--push-retry N retries it"} {
			if !strings.Contains(res.Stderr, want) {
				t.Errorf("the log does not say %q:\n%s", want, res.Stderr)
			}
		}
		t.Logf("the user sees: %s", lastLine(res.Stderr))
		if d := digestOf(t, reg, ref); d != oldDigest {
			t.Errorf("after a failed push %s points at %s, want the old image %s", ref, d, oldDigest)
		}
		verifyImage(t, reg, ref)

		proxy.log()
		proxy.resetUploads(2, 4*mib) // two resets, then the network is fine again
		res = build("--push-retry", "3")
		if res.ExitCode != 0 {
			t.Fatalf("--push-retry 3 did not carry the push through two resets:\n%s", res.Stderr)
		}
		reqs := proxy.log()
		manifestLast(t, reqs)
		if d := digestOf(t, reg, ref); d == oldDigest || d == "" {
			t.Errorf("after the retried push %s still points at %q", ref, d)
		}
		verifyImage(t, reg, ref)
	})

	top := t
	t.Run("registry killed mid-push", func(t *testing.T) {
		for _, c := range []struct {
			name  string
			retry bool
		}{{"without --push-retry", false}, {"with --push-retry", true}} {
			t.Run(c.name, func(t *testing.T) {
				ref := tagOld("it/killed:1")
				args := []string{"--destination", ref, "--insecure", "--insecure-pull", "--skip-push-permission-check"}
				if c.retry {
					args = append(args, "--push-retry", "5")
				}
				// Kill the registry once 8 MiB of the 25 MiB layer are in, and restart it 3 s later.
				// One upload's size, not the sum of all: killed while the small blobs commit,
				// Debian's registry 2.8.2 can leave a repository's link file empty, and then
				// fails every later commit of that blob with HTTP 500 ("invalid checksum digest
				// format"), which no client retry can mend.
				killer := killMidUpload(top, reg, 8*mib, 3*time.Second)
				res := testenv.RunPod(t, registryPod(t, ctx, args...))
				if !killer.wait(t) {
					t.Fatalf("the push ended before the registry could be killed:\n%s", res.Stderr)
				}
				if !c.retry {
					if res.ExitCode == 0 {
						t.Fatalf("the push succeeded although the registry died:\n%s", res.Stderr)
					}
					if !strings.Contains(res.Stderr, "push "+ref) || !strings.Contains(res.Stderr, "--push-retry") {
						t.Errorf("the error does not name the destination %s and suggest --push-retry:\n%s", ref, res.Stderr)
					}
					t.Logf("the user sees: %s", lastLine(res.Stderr))
					if d := digestOf(t, reg, ref); d != oldDigest {
						t.Errorf("after a failed push %s points at %s, want the old image %s", ref, d, oldDigest)
					}
					verifyImage(t, reg, ref)
					return
				}
				if res.ExitCode != 0 {
					t.Fatalf("--push-retry did not carry the push through the registry's restart:\n%s\nthe registry's errors:\n%s",
						res.Stderr, registryErrors(reg))
				}
				if d := digestOf(t, reg, ref); d == oldDigest || d == "" {
					t.Errorf("after the retried push %s still points at %q", ref, d)
				}
				verifyImage(t, reg, ref)
			})
		}
	})
}

// registryKiller kills a registry in the middle of an upload and restarts it.
type registryKiller struct {
	stop   chan struct{}
	done   chan struct{}
	killed bool
	err    error
}

// killMidUpload kills reg once one upload begun since the call holds more than after bytes, and restarts
// it (same port and storage) down later. The restarted registry lives as long as owner, the
// test that started reg.
func killMidUpload(owner testing.TB, reg *testenv.Registry, after int64, down time.Duration) *registryKiller {
	k := &registryKiller{stop: make(chan struct{}), done: make(chan struct{})}
	baseline := reg.Uploads() // what earlier pushes left unfinished
	go func() {
		defer close(k.done)
		for {
			select {
			case <-k.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			if largestNew(reg.Uploads(), baseline) > after {
				if k.err = reg.Kill(); k.err != nil {
					return
				}
				k.killed = true
				time.Sleep(down)
				k.err = reg.Restart(owner)
				return
			}
		}
	}()
	return k
}

// largestNew is the size of the largest upload that is not in baseline.
func largestNew(uploads, baseline map[string]int64) int64 {
	var n int64
	for u, size := range uploads {
		if _, old := baseline[u]; !old {
			n = max(n, size)
		}
	}
	return n
}

// wait stops watching, waits for a restart in progress and reports whether the registry was
// killed.
func (k *registryKiller) wait(t *testing.T) bool {
	t.Helper()
	close(k.stop)
	<-k.done
	if k.err != nil {
		t.Fatal(k.err)
	}
	return k.killed
}

// registryErrors is the registry's own log lines at level error, for a failure's message.
func registryErrors(reg *testenv.Registry) string {
	data, err := os.ReadFile(reg.LogFile)
	if err != nil {
		return err.Error()
	}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, "level=error") || strings.Contains(l, "panic") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}
