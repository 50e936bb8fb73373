package dockerfile

import (
	"runtime"
	"testing"
)

func TestParsePlatform(t *testing.T) {
	tests := map[string]Platform{
		"linux/amd64":     {OS: "linux", Architecture: "amd64"},
		"linux/arm/v7":    {OS: "linux", Architecture: "arm", Variant: "v7"},
		"Linux/x86_64":    {OS: "linux", Architecture: "amd64"},
		"linux/aarch64":   {OS: "linux", Architecture: "arm64"},
		" linux/arm64/v8": {OS: "linux", Architecture: "arm64", Variant: "v8"},
	}
	for in, want := range tests {
		got, err := ParsePlatform(in)
		if err != nil || got.OS != want.OS || got.Architecture != want.Architecture || got.Variant != want.Variant {
			t.Errorf("ParsePlatform(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "linux", "linux/", "/amd64", "a/b/c/d"} {
		if _, err := ParsePlatform(bad); err == nil {
			t.Errorf("ParsePlatform(%q) accepted", bad)
		}
	}
	if got := FormatPlatform(Platform{OS: "linux", Architecture: "arm", Variant: "v6"}); got != "linux/arm/v6" {
		t.Errorf("FormatPlatform = %q", got)
	}
}

func TestDefaultPlatform(t *testing.T) {
	p := DefaultPlatform()
	if p.OS != runtime.GOOS || p.Architecture != runtime.GOARCH {
		t.Errorf("DefaultPlatform = %+v", p)
	}
	if (p.Architecture == "arm") != (p.Variant != "") {
		t.Errorf("variant %q for %s", p.Variant, p.Architecture)
	}
	// A zero platform means "this machine" for the automatic ARGs.
	d := mustParse(t, "FROM scratch\n")
	meta, err := d.Meta(nil, Platform{}, Platform{})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := meta.Get("TARGETPLATFORM"); v != FormatPlatform(p) {
		t.Errorf("TARGETPLATFORM = %q", v)
	}
}
