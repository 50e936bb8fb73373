package kube

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// cgroupRoot is a cgroup of the node's own (the kubelet's cgroupRoot), made
// in every mounted hierarchy so that the kubelet never touches cgroups that
// other tools made.
type cgroupRoot struct {
	name string   // "/kiln-node-PID", as the kubelet's cgroupRoot
	dirs []string // its directory in each hierarchy
}

// cgroupMounts lists the mount points of cgroup hierarchies (v1 and v2).
func cgroupMounts() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mounts []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		// ... mount-point ... - fstype source options
		fields := strings.Fields(s.Text())
		sep := indexOf(fields, "-")
		if sep < 0 || sep+1 >= len(fields) || len(fields) < 5 {
			continue
		}
		if fstype := fields[sep+1]; fstype == "cgroup" || fstype == "cgroup2" {
			mounts = append(mounts, fields[4])
		}
	}
	return mounts, s.Err()
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// daemonsCgroup is the child of the root that holds the node's daemons and,
// through them, containerd's shims; the kubelet puts pods in kubepods.
const daemonsCgroup = "daemons"

// makeCgroupRoot creates name, and its daemons child, in every hierarchy.
func makeCgroupRoot(name string) (*cgroupRoot, error) {
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	if len(mounts) == 0 {
		return nil, skipf("kube: no cgroup hierarchy is mounted; a kubelet needs cgroups")
	}
	r := &cgroupRoot{name: name}
	for _, m := range mounts {
		dir := filepath.Join(m, name)
		if err := makeCgroup(dir); err != nil {
			r.remove()
			return nil, err
		}
		r.dirs = append(r.dirs, dir)
		if err := makeCgroup(filepath.Join(dir, daemonsCgroup)); err != nil {
			r.remove()
			return nil, err
		}
	}
	return r, nil
}

// makeCgroup creates one cgroup. In cpuset it copies the parent's cpus and
// mems down: a new cpuset starts empty and takes no tasks.
func makeCgroup(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("kube: create cgroup %s: %w", dir, err)
	}
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		if v, err := os.ReadFile(filepath.Join(filepath.Dir(dir), f)); err == nil {
			if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
				return fmt.Errorf("kube: cgroup %s: copy %s down: %w", dir, f, err)
			}
		}
	}
	return nil
}

// existingCgroupRoot is the part of cgroup root name that exists now (a
// killed test's, to clean up).
func existingCgroupRoot(name string) *cgroupRoot {
	r := &cgroupRoot{name: name}
	mounts, _ := cgroupMounts()
	for _, m := range mounts {
		if dir := filepath.Join(m, name); dirExists(dir) {
			r.dirs = append(r.dirs, dir)
		}
	}
	return r
}

func dirExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// daemonProcs are the cgroup.procs files a daemon writes its pid to, to
// join the daemons cgroup in every hierarchy.
func (r *cgroupRoot) daemonProcs() []string {
	var files []string
	for _, d := range r.dirs {
		files = append(files, filepath.Join(d, daemonsCgroup, "cgroup.procs"))
	}
	return files
}

// pids lists every process in the root's cgroups, at any depth.
func (r *cgroupRoot) pids() map[int]bool {
	pids := map[int]bool{}
	for _, d := range r.dirs {
		_ = filepath.WalkDir(d, func(path string, e os.DirEntry, err error) error {
			if err != nil || !e.IsDir() {
				return nil
			}
			b, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
			if err != nil {
				return nil
			}
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					pids[pid] = true
				}
			}
			return nil
		})
	}
	return pids
}

// kill SIGKILLs every process in the root's cgroups at once by writing
// cgroup.kill in its cgroup v2 directory (Linux 5.14+; on a hybrid host the
// unified hierarchy holds every process too). Unlike a signal per pid, it
// also catches processes forked meanwhile. It reports whether a v2 directory
// took the request.
func (r *cgroupRoot) kill() bool {
	killed := false
	for _, d := range r.dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.kill"), []byte("1"), 0o200); err == nil {
			killed = true
		}
	}
	return killed
}

// populated reports whether any live process remains in the root's cgroups:
// the kernel's own answer (cgroup.events "populated" of v2, which counts no
// zombie), or, without v2, any pid in cgroup.procs at any depth.
func (r *cgroupRoot) populated() bool {
	v2 := false
	for _, d := range r.dirs {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.events"))
		if err != nil {
			continue
		}
		v2 = true
		if strings.Contains(string(b), "populated 1") {
			return true
		}
	}
	return !v2 && len(r.pids()) > 0
}

// remove deletes the root's cgroups, deepest first, once their processes
// are gone (the kernel frees an emptied cgroup a moment after its last task).
func (r *cgroupRoot) remove() error {
	var dirs []string
	for _, d := range r.dirs {
		_ = filepath.WalkDir(d, func(path string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	var last error
	for _, d := range dirs {
		for attempt := 0; attempt < 50; attempt++ {
			last = os.Remove(d)
			if last == nil || os.IsNotExist(last) {
				last = nil
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if last != nil {
			return fmt.Errorf("kube: remove cgroup %s: %w", d, last)
		}
	}
	return nil
}
