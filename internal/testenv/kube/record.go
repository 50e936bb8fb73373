package kube

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"syscall"
)

// nodeRecordFile describes the running cluster's changes to the host while it
// runs. Found by the next cluster (which holds clusterLock, so its writer is
// gone), it means a test was killed before its cleanup: the next cluster
// undoes what the record lists.
const nodeRecordFile = "/var/cache/kiln/kube-node.json"

// nodeRecord is what a cluster changed on the host.
type nodeRecord struct {
	PID         int      `json:"pid"`         // the test process
	Cgroup      string   `json:"cgroup"`      // cgroup root, every node process is in it
	MountPoints []string `json:"mountPoints"` // directories made on the host
	Sysctls     sysctls  `json:"sysctls"`     // values before the node started
}

// recordCgroup is the form of the cgroup roots this package makes.
var recordCgroup = regexp.MustCompile(`^/kiln-node-[0-9]+$`)

// check refuses a record that names anything but what a cluster makes: its
// cgroup's processes get killed and its mount points removed.
func (r *nodeRecord) check() error {
	if !recordCgroup.MatchString(r.Cgroup) {
		return fmt.Errorf("kube: %s names cgroup %q, not one of ours: check the host and remove the file", nodeRecordFile, r.Cgroup)
	}
	for _, p := range r.MountPoints {
		if !slices.Contains(fixedPaths, p) {
			return fmt.Errorf("kube: %s names mount point %q, not one of ours: check the host and remove the file", nodeRecordFile, p)
		}
	}
	return nil
}

// write stores the record.
func (r *nodeRecord) write() error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(nodeRecordFile, b, 0o644); err != nil {
		return fmt.Errorf("kube: %w", err)
	}
	return nil
}

// undo puts the host back as the record says: kills what is left in the
// cgroups, removes them, the bridge and kube-proxy's tables, restores the
// settings and removes the mount points.
func (r *nodeRecord) undo() error {
	cg := existingCgroupRoot(r.Cgroup)
	errs := []error{killNode("", cg), cg.remove(), deleteLink(cniBridge),
		deleteNftTable("ip kube-proxy"), deleteNftTable("ip6 kube-proxy")}
	_, err := r.Sysctls.restore()
	errs = append(errs, err)
	for i := len(r.MountPoints) - 1; i >= 0; i-- {
		if err := syscall.Rmdir(r.MountPoints[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("kube: remove mount point %s: %w", r.MountPoints[i], err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return os.Remove(nodeRecordFile)
}

// reapKilledCluster undoes the leftovers of a cluster whose test was killed,
// if the record says there are any. Without a record, kube-proxy's tables on
// the host belong to someone else: that is an error, not ours to delete.
func reapKilledCluster(logf func(string, ...any)) error {
	b, err := os.ReadFile(nodeRecordFile)
	if err == nil {
		var r nodeRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("kube: %s: %w (remove it after checking the host)", nodeRecordFile, err)
		}
		if err := r.check(); err != nil {
			return err
		}
		if err := r.undo(); err != nil {
			return fmt.Errorf("kube: clean up after the killed test (pid %d) that %s records: %w", r.PID, nodeRecordFile, err)
		}
		logf("kube: cleaned up after a cluster whose test (pid %d) was killed: cgroup %s, bridge %s, kube-proxy tables, settings",
			r.PID, r.Cgroup, cniBridge)
	} else if !os.IsNotExist(err) {
		return fmt.Errorf("kube: %w", err)
	}
	if err := reapStrayCgroups(logf); err != nil {
		return err
	}
	tables, err := nftTables()
	if err != nil {
		return err
	}
	for _, t := range tables {
		if strings.HasSuffix(t, " kube-proxy") {
			return fmt.Errorf("kube: this machine already has kube-proxy's nftables table %q: a real node, or not ours (nft delete table %s)", t, t)
		}
	}
	return deleteLink(cniBridge)
}

// reapStrayCgroups removes cgroup roots of ours that no record names (a test
// killed before it wrote its record), with whatever still runs in them. The
// caller holds clusterLock, so no live cluster owns one.
func reapStrayCgroups(logf func(string, ...any)) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, m := range mounts {
		entries, _ := os.ReadDir(m)
		for _, e := range entries {
			name := "/" + e.Name()
			if !e.IsDir() || !recordCgroup.MatchString(name) || seen[name] {
				continue
			}
			seen[name] = true
			cg := existingCgroupRoot(name)
			if err := errors.Join(killNode("", cg), cg.remove()); err != nil {
				return fmt.Errorf("kube: remove stray cgroup %s: %w", name, err)
			}
			logf("kube: removed cgroup %s of a killed test", name)
		}
	}
	return nil
}
