// Package runner runs the process of a Dockerfile RUN instruction inside an
// image root.
//
// Two modes exist, chosen by Spec.Root:
//
//   - Pod mode (Root "/"): the process is executed directly in this process's
//     root filesystem, without chroot or new namespaces, as Kaniko does inside
//     a build pod. It runs in its own process group, which is killed when the
//     command exits or the context is cancelled. A run with Mounts, Tmpfs,
//     secret Files or NetworkNone goes through the helper (see Re-exec) in a
//     private mount namespace, and for NetworkNone a network namespace, but
//     still in this root and pid namespace; creating them needs
//     CAP_SYS_ADMIN, which build pods usually lack, and Run then says so.
//     There, Spec.EmulateMounts provides the mounts without a namespace
//     instead (PodIsolation tells which case holds): each target holds the
//     thing itself for the run, taken away after it (see emulation).
//
//   - Directory mode (any other Root): the process runs with Root as its root
//     filesystem (pivot_root, or chroot where pivot_root is impossible) in new
//     mount, pid, uts and ipc namespaces. The runner provides a fresh /proc, a
//     read-only /sys, a minimal /dev (a tmpfs holding bind mounts of the host's
//     null, zero, full, random, urandom and tty devices, a private devpts at
//     /dev/pts, a tmpfs at /dev/shm and the usual fd/stdin/stdout/stderr/ptmx
//     symlinks), and private copies of the host's /etc/hosts and
//     /etc/resolv.conf, so writes to any of them never reach the host.
//     Spec.Mounts bind host files or directories into the root for the
//     run (recursively, read-only on request, or writable with the writes
//     kept in memory and discarded), Spec.Tmpfs add empty tmpfs mounts, and
//     NetworkNone gives the run a network namespace with loopback only; all
//     are visible to the run only.
//     Every mount of the new namespace is made private first, so nothing
//     the run mounts reaches the host; this works as well when the caller
//     runs chrooted into a directory that is not a mount point (see
//     privateFromNamespaceRoot).
//
// # Re-exec
//
// Directory mode re-executes the current binary (/proc/self/exe) with
// argv[0] set to a marker. The package's init function recognises the marker,
// reads its instructions from an inherited pipe, sets up the mounts, enters
// the root and then, as pid 1 of the new pid namespace, starts the real
// command, forwards signals to it, reaps orphans and exits with the command's
// exit code. When pid 1 exits, the kernel kills everything left in the pid
// namespace, so background processes never outlive the command. In pod mode
// the helper only makes the mounts and starts the command in its own process
// group, which is killed as one when the command exits.
//
// Because every binary that links this package (the executor, any program
// using the builder as a library, and `go test` binaries) runs that init
// function, the re-exec works without any extra set-up. Programs that
// re-execute themselves in other ways must not use the marker as argv[0].
//
// # Leaving no trace
//
// Mount points the root lacks (for example no /proc directory or no
// /etc/hosts file) are created before the run and removed afterwards; the
// modification and access times of their parent directories are restored
// when the command itself did not change those directories, so a snapshot
// taken afterwards sees only what the command did. The inode change time
// (ctime) of such a parent cannot be restored. Mounts vanish with the mount
// namespace. Spec.Files are written to a tmpfs of the helper's own, never
// to a disk, and bind-mounted (or, below /dev, written into the private /dev
// tmpfs); pod mode without a namespace writes them into the root and removes
// them afterwards.
//
// Only one Run may use a given root at a time.
package runner
