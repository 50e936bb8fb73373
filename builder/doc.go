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
// Where Kaniko and BuildKit build a Dockerfile differently, the builder makes Kaniko's image,
// which is what Kaniko users' Dockerfiles rely on: ARG names are expanded (`ARG ${src}=x`), and
// VOLUME creates its directories while what a RUN later writes below them stays out of the
// image (see volume.go). Both agree, and so does the builder, that a stage built FROM another
// sees its ARGs, that a base without PATH gets Docker's default one, and that USER root needs
// no /etc/passwd. One difference is deliberate: a COPY source that is itself a symlink copies
// its target's content, as BuildKit does (Kaniko copies the link); see package
// internal/copier.
//
// RUN's BuildKit flags work in both modes: --mount of type cache (directories kept between builds
// in WithRunCacheDir, shared, locked or private across builds and processes), secret
// (WithSecrets; never in a layer, the config, the history, a cache key or the log), bind (the
// context, a stage or an image; read-only, or writable with the writes discarded), tmpfs and ssh
// (WithSSH), and --network=none. In pod mode those need a private mount (or network) namespace,
// and so CAP_SYS_ADMIN. A pod without it (the usual build pod, where Kaniko ignored the mounts)
// gets them emulated, with a warning naming the first such line: each target holds the thing
// itself during the RUN (a cache directory renamed there and back, or a symlink to it across
// file systems; a copy of a bind source; an empty directory; a secret written as a file; a
// socket relaying to the agent), all gone again before the snapshot (see emulatemounts.go).
// --network=none fails there, naming the line.
//
// BuildKit's COPY and ADD features work in both modes too: COPY --parents (see
// internal/copier.ParentsSource), COPY/ADD --link (a layer made apart from the root, keyed
// without its parent, so it survives a base change; see copylink.go), ADD of a Git repository
// (WithGit, addgit.go), ADD --unpack, and named contexts for FROM and --from
// (WithBuildContexts, namedcontext.go). `# syntax=` and `# check=` directives are logged and
// otherwise ignored: the builder always uses its own parser and runs no checks.
//
// A binary that uses directory mode runs RUN steps by re-executing itself; package
// internal/runner hooks that re-execution in its init function, so nothing is needed from the
// caller beyond importing builder.
package builder
