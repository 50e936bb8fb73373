package decompress

import (
	"bytes"
	"io"
	"os/exec"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

func TestReaderRecognisesEachFormat(t *testing.T) {
	payload := bytes.Repeat([]byte("kiln layer bytes "), 5000)
	compressors := map[string]func([]byte) []byte{
		"plain": func(b []byte) []byte { return b },
		"gzip": func(b []byte) []byte {
			var out bytes.Buffer
			w := gzip.NewWriter(&out)
			w.Write(b)
			w.Close()
			return out.Bytes()
		},
		"zstd": func(b []byte) []byte {
			var out bytes.Buffer
			w, _ := zstd.NewWriter(&out)
			w.Write(b)
			w.Close()
			return out.Bytes()
		},
		"xz": func(b []byte) []byte {
			var out bytes.Buffer
			w, _ := xz.NewWriter(&out)
			w.Write(b)
			w.Close()
			return out.Bytes()
		},
	}
	if _, err := exec.LookPath("bzip2"); err == nil {
		compressors["bzip2"] = func(b []byte) []byte {
			cmd := exec.Command("bzip2", "-c")
			cmd.Stdin = bytes.NewReader(b)
			out, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
	} else {
		t.Log("bzip2 is not installed: its case is not checked here")
	}
	for name, compress := range compressors {
		r, done, err := Reader(bytes.NewReader(compress(payload)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := io.ReadAll(r)
		done()
		if err != nil || !bytes.Equal(got, payload) {
			t.Errorf("%s: %d bytes back (err %v), want the %d bytes written", name, len(got), err, len(payload))
		}
	}
	if _, _, err := Reader(bytes.NewReader([]byte{0x1f, 0x8b, 0, 0})); err == nil {
		t.Errorf("a broken gzip header must be an error")
	}
}
