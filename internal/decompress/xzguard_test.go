package decompress

import (
	"bytes"
	"io"
	"math/rand"
	"os/exec"
	"strings"
	"testing"

	"github.com/ulikunitz/xz"
)

// Found by FuzzReader: the xz decoder allocates the whole dictionary a block header names, up
// to 4 GiB, so an 88-byte stream made Reader allocate 1.5 or 4 GiB; and a 14-byte zstd
// frame claiming a 512 MiB window allocated 512 MiB. Both are refused now beyond 128 MiB.
func TestReaderRefusesHugeWindows(t *testing.T) {
	seeds := readerSeeds(t)
	for name, stream := range map[string][]byte{
		"xz 1536 MiB dictionary": xzWithDict(t, 0x25),
		"xz 4 GiB dictionary":    xzWithDict(t, 0x28),
		"zstd 512 MiB window":    seeds[10],
		"zstd 256 MiB content":   seeds[13],
	} {
		r, done, err := Reader(bytes.NewReader(stream))
		if err == nil {
			_, err = io.Copy(io.Discard, r)
			done()
		}
		if err == nil || !strings.Contains(err.Error(), "dictionary") && !strings.Contains(err.Error(), "window") &&
			!strings.Contains(err.Error(), "limit") {
			t.Errorf("%s: got %v, want an error about its size", name, err)
		}
	}
}

// TestXZGuardPassesRealStreams checks that the guard follows what xz writes: one and several
// blocks, every check type, uncompressed chunks (random data), concatenated streams with
// padding between them, and ulikunitz/xz's own writer.
func TestXZGuardPassesRealStreams(t *testing.T) {
	text := bytes.Repeat([]byte("kiln layer bytes\n"), 40000)
	random := make([]byte, 300000)
	rand.New(rand.NewSource(1)).Read(random)
	payload := append(append([]byte(nil), text...), random...)

	var own bytes.Buffer
	w, err := xz.NewWriter(&own)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(payload)
	w.Close()
	cases := map[string][]byte{"ulikunitz writer": own.Bytes()}
	if _, err := exec.LookPath("xz"); err == nil {
		run := func(args ...string) []byte {
			cmd := exec.Command("xz", append([]string{"-c"}, args...)...)
			cmd.Stdin = bytes.NewReader(payload)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("xz %v: %v", args, err)
			}
			return out
		}
		for _, check := range []string{"none", "crc32", "crc64", "sha256"} {
			cases["check "+check] = run("--check=" + check)
		}
		cases["blocks"] = run("-T2", "--block-size=65536", "-1")
		cases["-9"] = run("-9")
		one := run("-0")
		cases["two streams and padding"] = append(append(append([]byte(nil), one...), 0, 0, 0, 0, 0, 0, 0, 0), one...)
	} else {
		t.Log("xz is not installed: only ulikunitz/xz's own streams are checked")
	}
	for name, stream := range cases {
		r, done, err := Reader(bytes.NewReader(stream))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := io.ReadAll(r)
		done()
		want := payload
		if name == "two streams and padding" {
			want = append(append([]byte(nil), payload...), payload...)
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, %v; want %d bytes", name, len(got), err, len(want))
		}
	}
}
