package builder

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// ignoreList is the set of image paths a build never snapshots, deletes or overwrites.
type ignoreList struct {
	paths []string // cleaned absolute image paths, sorted
}

func newIgnoreList(paths []string) *ignoreList {
	seen := map[string]bool{}
	l := &ignoreList{}
	for _, p := range paths {
		p = path.Clean("/" + p)
		if p == "/" || seen[p] {
			continue
		}
		seen[p] = true
		l.paths = append(l.paths, p)
	}
	sort.Strings(l.paths)
	return l
}

// Ignored reports whether an image path is an ignored path or lies below one.
func (l *ignoreList) Ignored(p string) bool {
	if l == nil {
		return false
	}
	for _, ig := range l.paths {
		if p == ig || strings.HasPrefix(p, ig+"/") {
			return true
		}
	}
	return false
}

// podIgnorePaths lists what pod mode must leave alone: the builder's own directory, every mount
// point of this container (/proc, /sys, /dev, /workspace, /etc/hosts, secrets ...), the user's
// --ignore-path entries and /var/run unless disabled.
func podIgnorePaths(kanikoDir string, extra []string, ignoreVarRun bool) ([]string, error) {
	paths := []string{kanikoDir}
	mounts, err := mountPoints("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	for _, m := range mounts {
		if m != "/" {
			paths = append(paths, m)
		}
	}
	if ignoreVarRun {
		paths = append(paths, "/var/run")
	}
	for _, p := range extra {
		if p == "" {
			continue
		}
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("--ignore-path %q: must be an absolute path", p)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// mountPoints reads the mount points (field 5) of a mountinfo file, unescaping octal escapes.
func mountPoints(file string) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("reading mount points: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		out = append(out, unescapeMount(fields[4]))
	}
	return out, sc.Err()
}

// unescapeMount decodes the \040-style escapes the kernel uses for spaces and the like.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%3o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// HasBelow reports whether some ignored path lies strictly below the image path dir.
func (l *ignoreList) HasBelow(dir string) bool {
	if l == nil {
		return false
	}
	prefix := strings.TrimSuffix(dir, "/") + "/"
	for _, ig := range l.paths {
		if strings.HasPrefix(ig, prefix) {
			return true
		}
	}
	return false
}
