// Package builder executes the stages of a Dockerfile against a root filesystem and returns the
// resulting image. It is the library entry point: Build parses nothing itself beyond what
// package dockerfile offers, snapshots through package snapshot, and pulls base images through
// package registry; pushing and writing outputs compose with the returned v1.Image.
//
// Two kinds of root exist. In pod mode (WithPodRoot) the root is "/" of the container the
// builder runs in, as Kaniko does: base images are unpacked over it, and the builder's own
// directory and every mount point are left alone. In directory mode (WithDirectoryRoot) the root
// is a directory and RUN executes in a chroot with its own namespaces; nothing outside the
// directory and the work directory changes.
//
// A binary that uses directory mode runs RUN steps by re-executing itself; package
// internal/runner hooks that re-execution in its init function, so nothing is needed from the
// caller beyond importing builder.
package builder
