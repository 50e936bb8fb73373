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

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"10GB": 10e9, "500MiB": 500 << 20, "1.5G": 15e8, "20Gi": 20 << 30,
		"4096": 4096, "2 kb": 2000, "1tib": 1 << 40} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GB", "10XB", "-1", "1.2.3M"} {
		if _, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q): no error", in)
		}
	}
}
