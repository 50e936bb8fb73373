package builder

import (
	"errors"
	"path"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// VOLUME follows Kaniko (v1.24), so that a Kaniko user's image stays the same:
//
//   - the config records each path as written;
//   - each path that does not exist becomes a directory, with its missing parents (0755,
//     owned by root, whatever the USER), so `VOLUME /data` + `RUN echo x > /data/f` works.
//     Kaniko creates it at VOLUME and the next instruction that snapshots records it; here it
//     is created right before that next instruction runs, which gives the same layers and lets
//     a cached build leave the root alone;
//   - for the rest of the stage, what a RUN adds or changes below a volume path is left out of
//     the image (the directory itself and deletions below it are recorded), as Docker's classic
//     builder discards such changes; COPY and ADD into a volume path are kept.
//
// A relative path is taken from the WORKDIR. (BuildKit only records the config, and a RUN that
// writes into the path then fails or keeps the data.)

// declareVolumes handles VOLUME: the config and the stage's list of volume paths.
func (b *build) declareVolumes(s *stageState, vols []string) error {
	c := &s.cfg.Config
	if c.Volumes == nil {
		c.Volumes = map[string]struct{}{}
	}
	for _, v := range vols {
		if v == "" {
			return errors.New("VOLUME specified can not be an empty string")
		}
		c.Volumes[v] = struct{}{}
		p := v
		if !path.IsAbs(p) {
			p = path.Join("/", c.WorkingDir, p)
		}
		p = path.Clean(p)
		s.volumes = append(s.volumes, p)
		s.pendingVolumes = append(s.pendingVolumes, p)
	}
	return nil
}

// volumesBefore creates the stage's pending volume directories when cmd is about to change the
// root (a miss, or no cache), and returns the shallowest directories it created, which belong
// in cmd's layer.
func (b *build) volumesBefore(s *stageState, cmd instructions.Command, hit bool) ([]string, error) {
	if hit || !changesFiles(cmd) || isLink(cmd) {
		return nil, nil // a --link layer has nothing of the root; the next instruction creates them
	}
	return b.createVolumes(s)
}

// createVolumes creates the pending volume directories that do not exist yet.
func (b *build) createVolumes(s *stageState) ([]string, error) {
	var created []string
	for _, v := range s.pendingVolumes {
		if b.ignore.Ignored(v) {
			b.warn("VOLUME %s is an ignored path (the executor's own directory, a mount, or --ignore-path): not created", v)
			continue
		}
		top, err := firstMissing(b.root, v)
		if err != nil {
			return nil, err
		}
		if top == "" {
			continue
		}
		if err := mkdirAllInRoot(b.root, v, 0, 0); err != nil {
			return nil, err
		}
		if !coveredBy(top, created) {
			created = append(created, top)
		}
	}
	s.pendingVolumes = nil
	return created, nil
}

// coveredBy reports whether p is one of dirs or lies below one.
func coveredBy(p string, dirs []string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, strings.TrimSuffix(d, "/")+"/") {
			return true
		}
	}
	return false
}

// withVolumes adds the volume directories created before cmd ran to what it changed. A RUN's
// layer walks the whole root (changed stays nil) and finds them itself.
func withVolumes(cmd instructions.Command, changed, vols []string) []string {
	if _, walks := cmd.(*instructions.RunCommand); walks || len(vols) == 0 {
		return changed
	}
	return append(changed, vols...)
}
