package snapshot

import (
	"path"
	"strings"
)

// childPath joins a directory image path and an entry name.
func childPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// parentPath returns the image path of p's directory ("/" for top-level entries).
func parentPath(p string) string {
	return path.Dir(p)
}

// hostPath maps an image path to the host path under root without resolving symlinks.
func hostPath(root, imagePath string) string {
	if imagePath == "/" {
		return root
	}
	if root == "/" {
		return imagePath
	}
	return root + imagePath
}

// isUnder reports whether p equals dir or lies below it.
func isUnder(p, dir string) bool {
	if dir == "/" || p == dir {
		return true
	}
	return strings.HasPrefix(p, dir) && len(p) > len(dir) && p[len(dir)] == '/'
}

// cleanImagePath turns a user or tar supplied path into a clean absolute image path. It reports
// false when the path climbs above the root with "..".
func cleanImagePath(p string) (string, bool) {
	rel := path.Clean(strings.TrimLeft(p, "/"))
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false
	}
	if rel == "." {
		return "/", true
	}
	return "/" + rel, true
}

// sortKey orders image paths component by component (parents right before their children) and
// puts an opaque marker first among its directory's entries.
func sortKey(p string) string {
	if strings.HasSuffix(p, "/"+opaqueMarker) {
		p = p[:len(p)-len(opaqueMarker)] + "\x01"
	}
	return strings.ReplaceAll(p, "/", "\x00")
}

// joinHost appends one entry name to a host directory path.
func joinHost(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}
