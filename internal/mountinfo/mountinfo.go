// Package mountinfo reads the mount points of a mount namespace from /proc/<pid>/mountinfo.
// The builder needs them to leave a pod's mounts alone; the test harness to unmount a pod.
package mountinfo

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// Self is this process's mountinfo file.
const Self = "/proc/self/mountinfo"

// Points returns the mount points listed in a mountinfo file, in its order (parents before
// the mounts on top of them), with the kernel's octal escapes decoded.
func Points(file string) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("reading mount points: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// Field 5 is the mount point.
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		out = append(out, Unescape(fields[4]))
	}
	return out, sc.Err()
}

// Unescape decodes the \ooo escapes the kernel writes for spaces, tabs, newlines and
// backslashes in paths.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, ok := octal3(s[i+1 : i+4]); ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func octal3(s string) (byte, bool) {
	var v int
	for _, c := range s {
		if c < '0' || c > '7' {
			return 0, false
		}
		v = v*8 + int(c-'0')
	}
	if v > 255 {
		return 0, false
	}
	return byte(v), true
}
