package mountinfo

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestPoints(t *testing.T) {
	f := filepath.Join(t.TempDir(), "mountinfo")
	data := "22 1 0:21 / / rw - overlay overlay rw\n" +
		"23 22 0:22 / /proc rw - proc proc rw\n" +
		"24 22 0:23 /x /etc/hosts rw - ext4 /dev/sda rw\n" +
		"25 22 0:24 / /my\\040dir\\134x rw - tmpfs tmpfs rw\n" +
		"short line\n"
	if err := os.WriteFile(f, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Points(f)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/", "/proc", "/etc/hosts", `/my dir\x`}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Points = %q, want %q", got, want)
	}
	if _, err := Points(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("a missing file must be an error")
	}
}

func TestPointsOfThisProcess(t *testing.T) {
	got, err := Points(Self)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || got[0] == "" {
		t.Fatalf("no mount points read from %s: %q", Self, got)
	}
}

func TestUnescapeLeavesBadEscapes(t *testing.T) {
	for in, want := range map[string]string{`a\040b`: "a b", `a\9zz`: `a\9zz`, `end\04`: `end\04`, `plain`: "plain"} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
