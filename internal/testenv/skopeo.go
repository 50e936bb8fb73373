package testenv

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
)

// SkopeoInspect runs `skopeo inspect docker://REF` against r and returns
// the decoded JSON (Digest, Layers, Env, Labels ...).
func SkopeoInspect(t testing.TB, r *Registry, ref string) map[string]any {
	t.Helper()
	return skopeoJSON(t, r, "inspect", "docker://"+ref)
}

// SkopeoInspectConfig runs `skopeo inspect --config docker://REF` against r
// and returns the image config as skopeo decodes it.
func SkopeoInspectConfig(t testing.TB, r *Registry, ref string) map[string]any {
	t.Helper()
	return skopeoJSON(t, r, "inspect", "--config", "docker://"+ref)
}

// SkopeoCopyToOCI copies ref from r into a new OCI layout directory with
// skopeo, tagged tag, and returns the directory (for UmociUnpack).
func SkopeoCopyToOCI(t testing.TB, r *Registry, ref, tag string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "oci")
	skopeo(t, append([]string{"copy"}, append(r.skopeoSrcFlags(), "docker://"+ref, "oci:"+dir+":"+tag)...)...)
	return dir
}

// skopeoJSON runs a skopeo subcommand with r's TLS and credential flags
// and decodes its JSON output.
func skopeoJSON(t testing.TB, r *Registry, sub string, args ...string) map[string]any {
	t.Helper()
	out := skopeo(t, append(append([]string{sub}, r.skopeoFlags()...), args...)...)
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("testenv: skopeo %s: decode output: %v\n%s", sub, err, tail(out))
	}
	return m
}

// skopeoFlags are the TLS and credential flags of skopeo inspect for r.
func (r *Registry) skopeoFlags() []string {
	var f []string
	if r.CertDir != "" {
		f = append(f, "--cert-dir", r.CertDir)
	} else {
		f = append(f, "--tls-verify=false")
	}
	if r.User != "" {
		f = append(f, "--creds", r.User+":"+r.Password)
	} else {
		f = append(f, "--no-creds")
	}
	return f
}

// skopeoSrcFlags are skopeoFlags spelled for the source of skopeo copy.
func (r *Registry) skopeoSrcFlags() []string {
	var f []string
	if r.CertDir != "" {
		f = append(f, "--src-cert-dir", r.CertDir)
	} else {
		f = append(f, "--src-tls-verify=false")
	}
	if r.User != "" {
		f = append(f, "--src-creds", r.User+":"+r.Password)
	} else {
		f = append(f, "--src-no-creds")
	}
	return f
}

// skopeo runs skopeo with args and returns its stdout, failing the test
// with its stderr on error.
func skopeo(t testing.TB, args ...string) []byte {
	t.Helper()
	bin := requireTool(t, "skopeo", "skopeo")
	cmd := exec.Command(bin, args...)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("testenv: skopeo %q: %v\n%s", args, err, tail(stderr))
	}
	return out
}
