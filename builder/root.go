package builder

import (
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kilnbuild/kiln/internal/mountinfo"
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
	mounts, err := mountinfo.Points(mountinfo.Self)
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
