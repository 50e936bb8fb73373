package testenv

import (
	"path/filepath"
	"strings"

	"github.com/kilnbuild/kiln/internal/mountinfo"
)

// mountsUnder lists the mount points in this process's mount namespace
// that are dir or inside it, deepest first (the order to unmount them).
func mountsUnder(dir string) ([]string, error) {
	all, err := mountinfo.Points(mountinfo.Self)
	if err != nil {
		return nil, err
	}
	dir = filepath.Clean(dir)
	var out []string
	for _, mp := range all {
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}
