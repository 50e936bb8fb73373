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

// prepareProvided creates, inside the root, the mount points of the run's
// staged files, Mounts and Tmpfs, and records them in is with host paths on
// both sides. points are the run's other mount points; none of these may
// cover one, or lie inside one.
func prepareProvided(sc *scratch, is *initSpec, files []File, s Spec, points []mountPoint) error {
	for _, f := range files {
		p := cleanImagePath(f.Path)
		target, err := sc.ensure(p, false)
		if err != nil {
			return err
		}
		if err := checkOverlap(mountPoint{p, target}, points, sc.root); err != nil {
			return err
		}
		points = append(points, mountPoint{p, target})
		is.Files = append(is.Files, stagedFile{Target: target, Data: f.Data, Mode: uint32(f.Mode.Perm()),
			UID: f.UID, GID: f.GID, ReadOnly: f.Secret})
	}
	var err error
	if is.Mounts, points, err = prepareMounts(sc, s.Mounts, points); err != nil {
		return err
	}
	for _, t := range s.Tmpfs {
		p := cleanImagePath(t.Target)
		target, err := sc.ensure(p, true)
		if err != nil {
			return fmt.Errorf("tmpfs at %s: %w", p, err)
		}
		if err := checkOverlap(mountPoint{p, target}, points, sc.root); err != nil {
			return err
		}
		points = append(points, mountPoint{p, target})
		is.Tmpfs = append(is.Tmpfs, Tmpfs{Target: target, Size: t.Size})
	}
	return nil
}

// prepareMounts checks every Spec.Mount's source, creates its mount point
// inside the root (a directory or an empty file, like the source) and
// returns the mounts with host paths on both sides, and points with theirs
// added.
func prepareMounts(sc *scratch, mounts []Mount, points []mountPoint) ([]Mount, []mountPoint, error) {
	out := make([]Mount, 0, len(mounts))
	for _, m := range mounts {
		src, isDir, err := mountSource(m)
		if err != nil {
			return nil, nil, err
		}
		img := cleanImagePath(m.Target)
		if m.Discard && !isDir {
			return nil, nil, fmt.Errorf("mount %s at %s: only a directory can be mounted read-write with its writes discarded", m.Source, img)
		}
		target, err := sc.ensure(img, isDir)
		if err != nil {
			return nil, nil, fmt.Errorf("mount %s at %s: %w", m.Source, img, err)
		}
		if err := checkOverlap(mountPoint{img, target}, points, sc.root); err != nil {
			return nil, nil, err
		}
		points = append(points, mountPoint{img, target})
		out = append(out, Mount{Source: src, Target: target, ReadOnly: m.ReadOnly, Discard: m.Discard})
	}
	return out, points, nil
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

// mountTargets lists the image paths the run mounts directories or files
// of its own at (Mounts and Tmpfs).
func mountTargets(s Spec) []string {
	var out []string
	for _, m := range s.Mounts {
		out = append(out, m.Target)
	}
	for _, t := range s.Tmpfs {
		out = append(out, t.Target)
	}
	return out
}

// workdirInMount reports whether the working directory dir (an image
// path) lies inside one of the mount targets, resolving both inside root.
// Such a directory is created by the helper once the mounts are in place.
func workdirInMount(root, dir string, targets []string) (bool, error) {
	if len(targets) == 0 {
		return false, nil
	}
	d, err := securejoin.SecureJoin(root, dir)
	if err != nil {
		return false, fmt.Errorf("working directory %s: %w", dir, err)
	}
	for _, target := range targets {
		t, err := securejoin.SecureJoin(root, cleanImagePath(target))
		if err != nil {
			return false, fmt.Errorf("mount target %s: %w", target, err)
		}
		if within(d, t) && t != root {
			return true, nil
		}
	}
	return false, nil
}
