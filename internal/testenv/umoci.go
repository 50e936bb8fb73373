package testenv

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// UmociUnpack unpacks tag of the OCI layout at ociLayoutDir into a new
// runtime bundle with `umoci unpack` (as root, so owners are kept) and
// returns the bundle's rootfs directory.
func UmociUnpack(t testing.TB, ociLayoutDir, tag string) string {
	t.Helper()
	requireRoot(t, "UmociUnpack")
	bin := requireTool(t, "umoci", "umoci")
	bundle := filepath.Join(t.TempDir(), "bundle")
	out, err := exec.Command(bin, "unpack", "--image", ociLayoutDir+":"+tag, bundle).CombinedOutput()
	if err != nil {
		t.Fatalf("testenv: umoci unpack --image %s:%s: %v\n%s", ociLayoutDir, tag, err, tail(out))
	}
	return filepath.Join(bundle, "rootfs")
}
