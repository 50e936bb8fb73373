// Package units formats quantities for log lines.
package units

import "fmt"

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
