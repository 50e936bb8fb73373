package runner

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// mountPoint is something the run mounts, by image path and resolved host
// path, so overlapping mounts can be refused by name.
type mountPoint struct {
	image, host string
}

// prepareMounts checks every Spec.Mount's source, creates its mount point
// inside the root (a directory or an empty file, like the source) and
// returns the mounts with host paths on both sides. provided are the run's
// other mount points; a mount may neither cover one nor lie inside
// /proc, /sys or /dev.
func prepareMounts(sc *scratch, mounts []Mount, provided []mountPoint) ([]Mount, error) {
	out := make([]Mount, 0, len(mounts))
	points := provided
	for _, m := range mounts {
		src, isDir, err := mountSource(m)
		if err != nil {
			return nil, err
		}
		img := cleanImagePath(m.Target)
		target, err := sc.ensure(img, isDir)
		if err != nil {
			return nil, fmt.Errorf("mount %s at %s: %w", m.Source, img, err)
		}
		if err := checkOverlap(mountPoint{img, target}, points, sc.root); err != nil {
			return nil, err
		}
		points = append(points, mountPoint{img, target})
		out = append(out, Mount{Source: src, Target: target, ReadOnly: m.ReadOnly})
	}
	return out, nil
}

// mountSource returns the absolute, symlink-free host path of a mount's
// source and whether it is a directory.
func mountSource(m Mount) (string, bool, error) {
	if m.Source == "" {
		return "", false, fmt.Errorf("mount at %s: no source given", m.Target)
	}
	if m.Target == "" {
		return "", false, fmt.Errorf("mount %s: no target given", m.Source)
	}
	src, err := filepath.Abs(m.Source)
	if err == nil {
		src, err = filepath.EvalSymlinks(src)
	}
	if err != nil {
		return "", false, fmt.Errorf("mount %s at %s: %w", m.Source, m.Target, err)
	}
	fi, err := os.Stat(src)
	if err != nil {
		return "", false, fmt.Errorf("mount %s at %s: %w", m.Source, m.Target, err)
	}
	return src, fi.IsDir(), nil
}

// checkOverlap refuses a mount at p that would hide an earlier mount point
// (or be hidden by one): the helper mounts in no particular nesting order,
// and mount points inside a mount would have been created in the image,
// not in the mounted directory.
func checkOverlap(p mountPoint, points []mountPoint, root string) error {
	if p.host == root {
		return fmt.Errorf("mount at %s: cannot mount over the whole root", p.image)
	}
	for _, q := range points {
		switch {
		case within(q.host, p.host):
			return fmt.Errorf("mount at %s: it would hide %s, which the run mounts too", p.image, q.image)
		case within(p.host, q.host):
			return fmt.Errorf("mount at %s: it lies inside %s, which the run mounts too", p.image, q.image)
		}
	}
	return nil
}

// within reports whether host path p is dir or lies below it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator))
}

// workdirInMount reports whether the working directory dir (an image
// path) lies inside one of the mounts, resolving both inside root. Such a
// directory is created by the helper once the mounts are in place.
func workdirInMount(root, dir string, mounts []Mount) (bool, error) {
	if len(mounts) == 0 {
		return false, nil
	}
	d, err := securejoin.SecureJoin(root, dir)
	if err != nil {
		return false, fmt.Errorf("working directory %s: %w", dir, err)
	}
	for _, m := range mounts {
		t, err := securejoin.SecureJoin(root, cleanImagePath(m.Target))
		if err != nil {
			return false, fmt.Errorf("mount target %s: %w", m.Target, err)
		}
		if within(d, t) && t != root {
			return true, nil
		}
	}
	return false, nil
}
