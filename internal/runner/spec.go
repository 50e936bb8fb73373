package runner

import (
	"io"
	"os"
	"strconv"
)

// Spec describes one process to run inside an image root.
type Spec struct {
	// Root is the host path of the image root. "/" selects pod mode: the
	// process runs directly in this process's root, without chroot and
	// without new namespaces.
	Root string
	// Args is the argv. An Args[0] without "/" is looked up in the PATH
	// found in Env, resolved inside the root.
	Args []string
	// Env is the complete environment of the process.
	Env []string
	// Dir is the working directory as an image path. It is created (mode
	// 0755, owned by UID:GID) if missing, as Docker does. Empty means "/".
	Dir string
	// UID and GID are the credentials the process runs with.
	UID, GID uint32
	// Groups are the supplementary group ids of the process.
	Groups []uint32
	// Stdin, Stdout and Stderr are the process's standard streams; nil
	// means the null device.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Hostname is the host name seen by the process in directory mode
	// (which gets its own uts namespace). Empty means "kiln".
	Hostname string
	// Files are provided at image paths for the duration of the run only
	// (for example heredoc scripts at /dev/pipes/EOF); none of them
	// remains in the root afterwards.
	Files []File
	// Mounts are host files or directories bind-mounted into the root
	// for the run.
	Mounts []Mount
	// Tmpfs are empty in-memory directories mounted for the run.
	Tmpfs []Tmpfs
	// Network is the run's network: NetworkHost (the default) shares the
	// caller's; NetworkNone gives the run a network namespace of its own
	// with only a loopback interface.
	Network Network
	// EmulateMounts provides Mounts, Tmpfs and secret Files in pod mode
	// without a mount namespace, for a caller that cannot create one (no
	// CAP_SYS_ADMIN; see PodIsolation): each target then holds the thing
	// itself, put there for the run and taken away after it (see
	// emulation). NetworkNone is an error then. Directory mode ignores it.
	EmulateMounts bool
	// TempDir is a host directory for the runner's own scratch space
	// during the run (default os.TempDir()). In pod mode it must lie outside
	// what is snapshotted; the builder uses its work directory.
	TempDir string
}

// Network selects the network a run sees.
type Network string

const (
	// NetworkHost shares the caller's network (Docker's "default" and
	// "host" for RUN, as Kaniko runs them).
	NetworkHost Network = ""
	// NetworkNone isolates the run in a new network namespace where only
	// the loopback interface is up.
	NetworkNone Network = "none"
)

// Tmpfs is an empty tmpfs mounted at an image path for one run; what the
// run writes there is gone when it ends.
type Tmpfs struct {
	// Target is the absolute image path of the mount.
	Target string
	// Size limits the tmpfs in bytes; 0 is the kernel's default (half
	// the memory).
	Size int64
}

// Mount is a host file or directory bind-mounted, recursively, at an image
// path for one run (in pod mode too, in a private mount namespace, which
// needs CAP_SYS_ADMIN). A missing mount point is created inside the root
// (symlinks resolved inside the root, never out of it) and removed after
// the run, as the runner does for /proc. The mount lives in the run's
// private mount namespace only: the host never sees it. A mount may not
// cover another mount point of the run (/proc, /sys, /dev, /etc/hosts,
// /etc/resolv.conf, Files, other Mounts) nor lie below /proc, /sys or /dev.
type Mount struct {
	// Source is the host path mounted.
	Source string
	// Target is the absolute image path it appears at.
	Target string
	// ReadOnly makes the mount, and every mount below it, read-only.
	ReadOnly bool
	// Discard lets the run write to the mount while the source stays as it
	// is: the mount is an overlay whose upper layer lives in the run's
	// memory and vanishes with it. Mounts below the source are not seen.
	Discard bool
}

// File is a file provided to a run at an image path.
type File struct {
	// Path is the absolute image path of the file.
	Path string
	// Data is the file's content.
	Data []byte
	// Mode holds the file's permission bits.
	Mode os.FileMode
	// UID and GID own the file (root by default).
	UID, GID uint32
	// Secret keeps the file off every disk: it lives on a tmpfs of the
	// run and is bind-mounted at Path. Pod mode then needs a private mount
	// namespace (CAP_SYS_ADMIN) instead of writing the file into "/"; with
	// EmulateMounts it is written at Path for the run and removed after.
	Secret bool
}

// ExitError reports a command that ran but exited with a non-zero status.
// A command killed by signal N reports Code 128+N, as a shell does.
type ExitError struct {
	// Code is the exit status of the command.
	Code int
}

// Error returns "exit status N".
func (e *ExitError) Error() string { return "exit status " + strconv.Itoa(e.Code) }

// defaultPath is the PATH used for lookups when Env has none (Docker's).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// defaultHostname is the host name of directory-mode runs without one.
const defaultHostname = "kiln"
