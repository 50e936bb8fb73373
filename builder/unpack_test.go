package builder

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// A layer whose content does not hash to the diffID its image's config records is refused.
func TestExtractStreamChecksTheDiffID(t *testing.T) {
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	if err := tw.WriteHeader(&tar.Header{Name: "f", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte("hi"))
	tw.Close()
	sum := sha256.Sum256(tarBuf.Bytes())
	right := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarBuf.Bytes())
	zw.Close()

	if err := extractStream(context.Background(), bytes.NewReader(gz.Bytes()), t.TempDir(), nil, right, nil); err != nil {
		t.Fatalf("the right diffID: %v", err)
	}
	wrong := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
	err := extractStream(context.Background(), bytes.NewReader(gz.Bytes()), t.TempDir(), nil, wrong, nil)
	if err == nil || !strings.Contains(err.Error(), right.String()) || !strings.Contains(err.Error(), wrong.String()) {
		t.Fatalf("a wrong diffID: %v; want an error naming both digests", err)
	}
	if err := extractStream(context.Background(), bytes.NewReader(gz.Bytes()), t.TempDir(), nil, v1.Hash{}, nil); err != nil {
		t.Fatalf("no diffID to check: %v", err)
	}
}
