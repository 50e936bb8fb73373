package integration

import (
	"crypto/sha256"
	"encoding/json"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/kilnbuild/kiln/internal/testenv"
)

// TestFaultBaseDiffIDMismatch builds FROM a base image whose config records a diffID for its
// second layer that the layer's content does not have (a damaged or altered image: every blob
// matches its digest, but config and layer disagree). The build is refused, naming the layer,
// with or without the base image cache, and nothing is pushed.
func TestFaultBaseDiffIDMismatch(t *testing.T) {
	requireRoot(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:latest")
	good := pushWithLayer(t, reg, base, "base/good:1", tarLayer(t, map[string][]byte{"app/config.txt": []byte("trusted\n")}))
	forged, layer := forgeDiffID(t, pullRef(t, reg, good), 1)
	bad := pushRef(t, reg, "base/forged:1", forged)
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM " + bad + "\nRUN cat /app/config.txt\n"})

	for _, c := range []struct {
		name string
		args []string
	}{
		{"pulled", nil},
		{"through --cache-dir", []string{"--cache", "--cache-dir", "/cache", "--cache-repo", "oci:/cache/layers"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dest := reg.Ref("it/forged-base:1")
			p := registryPod(t, ctx, append([]string{"--destination", dest, "--insecure", "--insecure-pull"}, c.args...)...)
			if c.args != nil {
				p.Mounts = map[string]string{"/cache": t.TempDir()}
			}
			res := runPodWant(t, p, false)
			for _, want := range []string{"Dockerfile:", "unpacking layer 2/2 (" + layer.String() + ")", "diffID", "refusing"} {
				if !strings.Contains(res.Stderr, want) {
					t.Errorf("the log does not say %q:\n%s", want, res.Stderr)
				}
			}
			t.Logf("the user sees: %s", lastLine(res.Stderr))
			notPushed(t, reg, dest)
		})
	}
}

// forgeDiffID returns img with the config's diffID of layer i replaced by another digest (the
// layers and their digests unchanged), and that layer's digest.
func forgeDiffID(t *testing.T, img v1.Image, i int) (v1.Image, v1.Hash) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	sum := sha256.Sum256([]byte("not the layer's content"))
	cf.RootFS.DiffIDs[i] = v1.Hash{Algorithm: "sha256", Hex: hexString(sum[:])}
	rawCfg, err := json.Marshal(cf)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	m = m.DeepCopy()
	cfgSum := sha256.Sum256(rawCfg)
	m.Config.Digest = v1.Hash{Algorithm: "sha256", Hex: hexString(cfgSum[:])}
	m.Config.Size = int64(len(rawCfg))
	rawManifest, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := partial.CompressedToImage(forgedImage{base: img, cfg: rawCfg, manifest: rawManifest})
	if err != nil {
		t.Fatal(err)
	}
	return forged, m.Layers[i].Digest
}

// forgedImage serves a given config and manifest over another image's layers.
type forgedImage struct {
	base          v1.Image
	cfg, manifest []byte
}

func (f forgedImage) RawConfigFile() ([]byte, error)      { return f.cfg, nil }
func (f forgedImage) RawManifest() ([]byte, error)        { return f.manifest, nil }
func (f forgedImage) MediaType() (types.MediaType, error) { return f.base.MediaType() }
func (f forgedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	return f.base.LayerByDigest(h)
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}
