package runner

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// provide makes the run's own mounts in the helper's namespace: a private
// tmpfs on the stage directory holding the provided files (so none of them
// is ever written to a disk) and the upper layers of Discard mounts, each
// file bound onto its mount point, then the Mounts and the Tmpfs.
func provide(is *initSpec) error {
	if err := unix.Mount("tmpfs", is.Stage, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=700"); err != nil {
		return fmt.Errorf("mount a tmpfs on %s: %w", is.Stage, err)
	}
	for i, f := range is.Files {
		if err := bindFile(is.Stage, i, f); err != nil {
			return err
		}
	}
	for i, m := range is.Mounts {
		mount := bindMount
		if m.Discard {
			mount = func(m Mount) error { return overlayMount(is.Stage, i, m) }
		}
		if err := mount(m); err != nil {
			return err
		}
	}
	for _, t := range is.Tmpfs {
		opts := ""
		if t.Size > 0 {
			opts = "size=" + strconv.FormatInt(t.Size, 10)
		}
		if err := unix.Mount("tmpfs", t.Target, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
			return fmt.Errorf("mount a tmpfs on %s: %w", t.Target, err)
		}
	}
	return nil
}

// bindFile writes a provided file into the stage tmpfs, with its mode and
// owner, and binds it onto its mount point.
func bindFile(stage string, i int, f stagedFile) error {
	p := filepath.Join(stage, "f"+strconv.Itoa(i))
	if err := writeFileMode(p, f.Data, os.FileMode(f.Mode)); err != nil {
		return fmt.Errorf("provide %s: %w", f.Target, err)
	}
	if err := os.Lchown(p, int(f.UID), int(f.GID)); err != nil {
		return fmt.Errorf("provide %s: %w", f.Target, err)
	}
	if err := unix.Mount(p, f.Target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind a file on %s: %w", f.Target, err)
	}
	if f.ReadOnly {
		if err := unix.Mount("", f.Target, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
			return fmt.Errorf("make %s read-only: %w", f.Target, err)
		}
	}
	return nil
}

// overlayMount mounts m.Source at m.Target as the lower layer of an
// overlay whose upper layer lies in the stage tmpfs: the run may write
// there, the source never changes, and the writes vanish with the run.
// The source is bound into the stage first and the overlay options name
// stage-relative paths, so no source path needs escaping (a ',' or ':'
// in it would otherwise break the option string).
func overlayMount(stage string, i int, m Mount) error {
	name := "o" + strconv.Itoa(i)
	for _, d := range []string{"", "lower", "upper", "work"} {
		if err := os.Mkdir(filepath.Join(stage, name, d), 0o755); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.Source, m.Target, err)
		}
	}
	lower := filepath.Join(stage, name, "lower")
	if err := unix.Mount(m.Source, lower, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mount %s on %s: %w", m.Source, lower, err)
	}
	if err := unix.Chdir(stage); err != nil {
		return err
	}
	opts := fmt.Sprintf("lowerdir=%s/lower,upperdir=%s/upper,workdir=%s/work", name, name, name)
	if err := unix.Mount("overlay", m.Target, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount %s on %s read-write with its writes discarded (overlay on a tmpfs): %w", m.Source, m.Target, err)
	}
	return nil
}
