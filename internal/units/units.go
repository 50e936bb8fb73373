// Package units formats quantities for log lines and parses sizes given in flags.
package units

import (
	"fmt"
	"strconv"
	"strings"
)

// Bytes formats n bytes for a person: "512 B", "1.5 KiB", "20.0 MiB", "3.2 GiB" (binary
// units, one decimal).
func Bytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// sizeUnits are the suffixes ParseBytes knows: SI (powers of 1000) and IEC (powers of 1024),
// with or without a final B.
var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
	"ki": 1 << 10, "kib": 1 << 10, "mi": 1 << 20, "mib": 1 << 20, "gi": 1 << 30, "gib": 1 << 30,
	"ti": 1 << 40, "tib": 1 << 40,
}

// ParseBytes reads a size such as "10GB" (10*1000^3 bytes), "500MiB" (500*1024^2), "1.5G",
// "20Gi" or "4096" as a number of bytes (the inverse of Bytes, give or take rounding). Case
// does not matter; a space may separate the number and the unit.
func ParseBytes(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	i := strings.IndexFunc(t, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.') })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	mult, ok := sizeUnits[unit]
	if !ok || num == "" {
		return 0, fmt.Errorf("size %q: want a number and an optional unit (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)", s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || f*mult > 1<<62 {
		return 0, fmt.Errorf("size %q: not a size", s)
	}
	return int64(f * mult), nil
}
