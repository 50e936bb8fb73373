package units

import "testing"

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0:             "0 B",
		1023:          "1023 B",
		1024:          "1.0 KiB",
		1536:          "1.5 KiB",
		1<<20 - 1:     "1024.0 KiB",
		20 << 20:      "20.0 MiB",
		1 << 30:       "1.0 GiB",
		3<<30 + 1<<29: "3.5 GiB",
		5 << 40:       "5120.0 GiB",
	} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
