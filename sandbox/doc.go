// Package sandbox runs a command in an image's filesystem, the way a CI job runs a step in a
// container, without a container daemon: Unpack writes a v1.Image's layers into a directory
// (whiteouts applied, ownership and modes kept, never following a symlink out of it), and
// Root.Run runs a command with that directory as its root, in Kiln's directory-mode sandbox.
//
// The sandbox is the one the builder runs RUN instructions in: pivot_root (or chroot) into the
// directory, in new mount, pid, uts and ipc namespaces, with a fresh /proc, a read-only /sys, a
// minimal private /dev and private copies of the host's /etc/hosts and /etc/resolv.conf. The
// network is the host's (no network namespace), so a server started in the sandbox is reachable
// on the host's loopback. Host directories can be bind-mounted in (Command.Mounts); the mounts
// exist in the run's private mount namespace only. When the command exits, or ctx is cancelled,
// every process it started is killed, and what the run had to create in the root for its mount
// points is removed again.
//
// Commands get the image config's defaults, as `docker run` gives them: Env (merged with the
// command's), WorkingDir, User (resolved from the image's own /etc/passwd and /etc/group, never
// the host's) and, when no arguments are given, Entrypoint and Cmd.
//
// Running needs root (namespaces and mounts); Supported says whether this machine allows it.
// Nothing outside the root directory and the mounted host paths is changed: the host's / never.
package sandbox
