package dockerfile

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Platform is an OCI platform (OS, architecture, variant).
type Platform = ocispec.Platform

// archAliases maps the names uname and others use to Go/OCI names.
var archAliases = map[string]string{
	"x86_64":  "amd64",
	"x86-64":  "amd64",
	"aarch64": "arm64",
	"armhf":   "arm",
	"armel":   "arm",
	"i386":    "386",
	"i686":    "386",
}

// ParsePlatform parses "os/arch[/variant]" (for example "linux/arm/v7").
// Architecture aliases such as x86_64 and aarch64 are normalised.
func ParsePlatform(s string) (Platform, error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "/")
	if len(parts) < 2 || len(parts) > 3 {
		return Platform{}, fmt.Errorf("invalid platform %q: want os/arch[/variant]", s)
	}
	for _, p := range parts {
		if p == "" {
			return Platform{}, fmt.Errorf("invalid platform %q: empty component", s)
		}
	}
	p := Platform{OS: parts[0], Architecture: parts[1]}
	if a, ok := archAliases[p.Architecture]; ok {
		p.Architecture = a
	}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// DefaultPlatform is the platform this binary runs on: GOOS/GOARCH, with the
// ARM variant for arm (v7 unless built with another GOARM).
func DefaultPlatform() Platform {
	p := Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	if p.Architecture == "arm" {
		p.Variant = "v7"
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "GOARM" && s.Value != "" {
					p.Variant = "v" + strings.SplitN(s.Value, ",", 2)[0]
				}
			}
		}
	}
	return p
}

// FormatPlatform renders p as "os/arch[/variant]".
func FormatPlatform(p Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// orDefault returns p, or the default platform when p is the zero value.
func orDefault(p Platform) Platform {
	if p.OS == "" && p.Architecture == "" {
		return DefaultPlatform()
	}
	return p
}

// platformArgs are the automatic ARGs Docker defines from the target and build platforms.
func platformArgs(target, build Platform) [][2]string {
	target, build = orDefault(target), orDefault(build)
	return [][2]string{
		{"TARGETPLATFORM", FormatPlatform(target)},
		{"TARGETOS", target.OS},
		{"TARGETARCH", target.Architecture},
		{"TARGETVARIANT", target.Variant},
		{"BUILDPLATFORM", FormatPlatform(build)},
		{"BUILDOS", build.OS},
		{"BUILDARCH", build.Architecture},
		{"BUILDVARIANT", build.Variant},
	}
}
