package copier

import (
	"path"
	"sort"
)

// reduce sorts and de-duplicates image paths and drops any path below
// another one in the list, since a listed directory stands for its subtree.
func reduce(paths []string) []string {
	set := make(map[string]bool, len(paths))
	for _, p := range paths {
		set[p] = true
	}
	out := make([]string, 0, len(set))
	for p := range set {
		covered := false
		for q := path.Dir(p); p != "/"; q = path.Dir(q) {
			if set[q] {
				covered = true
				break
			}
			if q == "/" {
				break
			}
		}
		if !covered {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}
