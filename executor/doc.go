// Package executor is Kiln's Kaniko-compatible executor as a library: the command line (every
// Kaniko flag with its name, shorthand and default, and the deprecated spellings), the checks
// on it, the mapping of registry and cache flags onto registry and builder options, fetching
// the build context, the build, and the outputs (push, tarball, OCI layout, digest files), with
// the logger that renders the build's events as Kaniko users know them. BuildKit's --secret and
// --ssh flags feed RUN --mount=type=secret and type=ssh, and --cache-dir also holds the
// directories of RUN --mount=type=cache (in <dir>/mounts).
//
// cmd/executor is a thin main over it; CI tools run "the executor with these flags"
// in-process the same way:
//
//	cfg, err := executor.ParseFlags([]string{"--context=dir:///src", "--destination=reg/app:1"})
//	if err != nil { ... }
//	log, _ := executor.NewLogger(os.Stderr, "text", "info", false)
//	res, err := executor.Run(ctx, cfg,
//		executor.WithDirectoryRoot("/var/tmp/build/rootfs"), // or WithPodRoot() inside a build pod
//		executor.WithLogger(log))
//
// The root is always chosen explicitly: pod mode builds into "/" of the container, as Kaniko
// does, and refuses to outside one; directory mode builds into a directory and never touches
// the host's "/".
package executor
