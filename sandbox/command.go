package sandbox

import (
	"io"
	"strconv"
)

// Command is one process to run in a Root.
type Command struct {
	// Args is the argv. Args[0] without a "/" is looked up in the PATH of the command's
	// environment, inside the root. Empty: the image's Entrypoint followed by its Cmd.
	Args []string
	// Env holds KEY=VALUE pairs added to the image's Env; a key set in both takes this value.
	// PATH defaults to Docker's default path and HOME to the user's home directory.
	Env []string
	// Dir is the working directory, an absolute image path. Empty: the image's WorkingDir,
	// then "/". A missing directory is created (mode 0755, owned by the user), as Docker does.
	Dir string
	// User is "user", "user:group", "uid" or "uid:gid", resolved from the image's /etc/passwd
	// and /etc/group. Empty: the image's User, then root.
	User string
	// Mounts are host paths bind-mounted into the root for this run.
	Mounts []Mount
	// Hostname is the host name the command sees (default "kiln").
	Hostname string
	// Stdin, Stdout and Stderr are the command's standard streams; nil means the null device.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Mount is a host file or directory bind-mounted (recursively) at an image path for one run.
// A missing mount point is created inside the root and removed after the run. A mount may not
// cover /proc, /sys, /dev, /etc/hosts, /etc/resolv.conf or another mount, nor lie inside one.
type Mount struct {
	// Source is the host path.
	Source string
	// Target is the absolute image path it appears at.
	Target string
	// ReadOnly makes the mount, and every mount below it, read-only.
	ReadOnly bool
}

// ExitError is returned by Run when the command ran and exited with a non-zero status. A
// command killed by signal N reports Code 128+N, as a shell does.
type ExitError struct {
	// Code is the command's exit status.
	Code int
}

// Error returns "exit status N".
func (e *ExitError) Error() string { return "exit status " + strconv.Itoa(e.Code) }
