package testenv

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// hostCABundle is the system CA bundle copied into every pod.
const hostCABundle = "/etc/ssl/certs/ca-certificates.crt"

// podDevices are the device nodes bind-mounted into the pod's /dev, as a
// container runtime provides them. The pod gets its own tmpfs /dev rather
// than the host's: an executor bug that clears "/" then cannot reach the
// host's device files, and /dev is still a mount point to be ignored.
func podDevices() []string { return []string{"null", "zero", "full", "random", "urandom", "tty"} }

// podLayout names the host paths of one pod.
type podLayout struct {
	root, hosts, resolv string
	// unshare is the host's unshare binary, which chroots into root.
	unshare string
	// setpriv is the host's setpriv binary, which drops Pod.DropCaps.
	setpriv string
}

// prepare creates the pod root with the executor, certificates and docker
// config, the mount points, and private copies of /etc/hosts and
// /etc/resolv.conf (so the pod cannot write the host's).
func (l podLayout) prepare(p Pod) error {
	for _, d := range []string{"kaniko/ssl/certs", "kaniko/.docker", "workspace", "proc", "dev", "sys", "etc", "tmp", "root"} {
		if err := os.MkdirAll(filepath.Join(l.root, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(l.root, "tmp"), os.ModeSticky|0o777); err != nil {
		return err
	}
	if err := copyFile(p.Executor, filepath.Join(l.root, "kaniko/executor"), 0o755); err != nil {
		return fmt.Errorf("copy executor: %w", err)
	}
	if _, err := os.Stat(hostCABundle); err == nil {
		if err := copyFile(hostCABundle, filepath.Join(l.root, "kaniko/ssl/certs/ca-certificates.crt"), 0o644); err != nil {
			return err
		}
	}
	if p.DockerConfig != "" {
		if err := copyFile(p.DockerConfig, filepath.Join(l.root, "kaniko/.docker/config.json"), 0o600); err != nil {
			return fmt.Errorf("copy docker config: %w", err)
		}
	}
	for src, dst := range map[string]string{"/etc/hosts": l.hosts, "/etc/resolv.conf": l.resolv} {
		if err := copyFile(src, dst, 0o644); err != nil {
			return err
		}
		if err := touch(filepath.Join(l.root, src)); err != nil {
			return err
		}
	}
	if p.Context != "" {
		if fi, err := os.Stat(p.Context); err != nil || !fi.IsDir() {
			return fmt.Errorf("context %q is not a directory (%v)", p.Context, err)
		}
	}
	return nil
}

// script returns the shell script run as pid 1 of the pod's namespaces: it
// makes the mounts, then replaces itself with the executor, chrooted.
func (l podLayout) script(p Pod) (string, error) {
	var b strings.Builder
	line := func(args ...string) {
		for i, a := range args {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(shellQuote(a))
		}
		b.WriteByte('\n')
	}
	b.WriteString("set -e\n")
	if p.Cgroup != nil {
		// First, so that every process of the pod is in the cgroup and under its limits.
		for _, f := range p.Cgroup.procsFiles() {
			b.WriteString("echo 0 > " + shellQuote(f) + "\n")
		}
	}
	line("mount", "--make-rprivate", "/")
	// The root is a mount point in a real pod (the container's rootfs).
	line("mount", "--rbind", l.root, l.root) // keeps the /proc unshare mounted
	dev := filepath.Join(l.root, "dev")
	line("mount", "-t", "tmpfs", "-o", "nosuid,mode=755,size=65536k", "tmpfs", dev)
	for _, n := range podDevices() {
		if _, err := os.Stat("/dev/" + n); err == nil {
			line("touch", filepath.Join(dev, n))
			line("mount", "--bind", "/dev/"+n, filepath.Join(dev, n))
		}
	}
	line("mkdir", "-p", filepath.Join(dev, "shm"), filepath.Join(dev, "pts"))
	line("mount", "-t", "tmpfs", "-o", "nosuid,nodev,mode=1777", "shm", filepath.Join(dev, "shm"))
	line("mount", "-t", "devpts", "-o", "newinstance,ptmxmode=0666,mode=0620", "devpts", filepath.Join(dev, "pts"))
	for _, link := range [][2]string{{"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"}, {"ptmx", "pts/ptmx"}} {
		line("ln", "-s", link[1], filepath.Join(dev, link[0]))
	}
	line("mount", "-t", "sysfs", "-o", "ro,nosuid,nodev,noexec", "sysfs", filepath.Join(l.root, "sys"))
	if p.Context != "" {
		line("mount", "--bind", p.Context, filepath.Join(l.root, "workspace"))
	}
	line("mount", "--bind", l.hosts, filepath.Join(l.root, "etc/hosts"))
	line("mount", "--bind", l.resolv, filepath.Join(l.root, "etc/resolv.conf"))
	mounts, err := l.extraMounts(p.Mounts)
	if err != nil {
		return "", err
	}
	for _, m := range mounts {
		line(m...)
	}
	env := append(kanikoEnv(), p.Env...)
	cmd := append([]string{"exec", "env", "-i"}, env...)
	if len(p.DropCaps) > 0 {
		// Out of the bounding and inheritable sets, root cannot get them back by exec.
		drop := "-" + strings.Join(p.DropCaps, ",-")
		cmd = append(cmd, l.setpriv, "--inh-caps="+drop, "--bounding-set="+drop)
	}
	cmd = append(cmd, l.unshare, "--root="+l.root, "--wd=/workspace", "/kaniko/executor")
	line(append(cmd, p.Args...)...)
	return b.String(), nil
}

// extraMounts returns the commands for p.Mounts, parents before children,
// creating each mount point in the root as a file or a directory.
func (l podLayout) extraMounts(m map[string]string) ([][]string, error) {
	paths := make([]string, 0, len(m))
	for p := range m {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var cmds [][]string
	for _, p := range paths {
		host := m[p]
		rel := strings.TrimPrefix(filepath.Clean("/"+p), "/")
		if rel == "" || strings.HasPrefix(rel, "proc/") || rel == "proc" {
			return nil, fmt.Errorf("mount at %q not allowed", p)
		}
		fi, err := os.Stat(host)
		if err != nil {
			return nil, fmt.Errorf("mount %q at %q: %w", host, p, err)
		}
		target := filepath.Join(l.root, rel)
		if fi.IsDir() {
			cmds = append(cmds, []string{"mkdir", "-p", target})
		} else {
			cmds = append(cmds, []string{"mkdir", "-p", filepath.Dir(target)}, []string{"touch", target})
		}
		cmds = append(cmds, []string{"mount", "--bind", host, target})
	}
	return cmds, nil
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// copyFile copies src to dst with mode.
func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return out.Close()
}

// touch creates an empty file at path (a mount point for a file).
func touch(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}
