// Package copier implements the filesystem side of the Dockerfile COPY and ADD
// instructions: it copies sources from a build context (or another stage's root)
// into an image root on the host, following Docker/BuildKit semantics.
//
// Decisions worth knowing (they match BuildKit unless noted):
//
//   - Destination paths are resolved inside Root with symlinks followed *within*
//     Root (securejoin), so `/app -> /opt/app` writes under /opt/app and
//     `/link -> /` can never escape. The image paths returned by Copy and Add are
//     the resolved ones, so the snapshotter sees the real change.
//   - Missing parent directories of the destination are created 0755 and owned
//     by UID:GID (the --chown user), or 0:0 when UID is -1; this is what
//     BuildKit's fsutil MkdirAll does. Existing parents are left untouched.
//   - A directory source copies its contents. When the destination directory does
//     not exist and there is a single source, it is created with the source
//     directory's mode (or --chmod), owner and mtime, as Kaniko and Docker's
//     classic builder do. An existing destination directory keeps its metadata;
//     existing directories deeper in the tree take the source's metadata.
//   - Source symlinks are copied as symlinks, except a top-level source (as
//     written or matched by a glob), which is followed inside SrcRoot: `COPY
//     link /dst` copies the content of link's target. This is BuildKit's rule
//     and a deliberate difference from Kaniko, which copies the link itself.
//   - Hard links among the files of one Copy/Add call are kept as hard links.
//   - Globs use filepath.Match per path component ("**" is not special, as in
//     Docker).
//   - Exclude is an opaque predicate, so to honour "!" exceptions an excluded
//     directory is still walked; its entries are created only when some
//     descendant is included. This costs a walk of excluded trees.
//   - A file replaces an existing directory (and vice versa) at any depth below
//     the destination; a directory containing Ignore'd paths is never removed.
//   - GID -1 with UID >= 0 keeps the source's group (and vice versa).
//   - A destination that is a symlink to a file is written through, to its
//     target inside the root (BuildKit resolves the whole path).
//   - ADD extracts an archive with the archive's owners unless
//     AddOptions.Chown says --chown was given; a "./" entry leaves the
//     destination directory's metadata alone; hard links stay links.
//   - COPY --parents (Request.Parents) keeps each source's path, relative to
//     SrcRoot or to a "/./" pivot, below the destination; see ParentsSource.
//   - AddOptions.Fetch lets the caller fetch a source itself (a Git checkout):
//     it is copied as a directory with its own exclusions; AddOptions.Unpack is
//     ADD --unpack.
//   - The returned paths are the minimal set of written subtrees: a
//     directory created by the call stands for everything below it, and an
//     existing directory is listed only when its metadata changed. Parents
//     of listed paths that already existed are not listed.
package copier
