// Package snapshot finds what an instruction changed in a root filesystem and writes it as a
// layer, and applies layers to a root (whiteouts included).
//
// Paths called "image paths" below are absolute paths as seen inside the image ("/etc/passwd"),
// independent of where the root lives on the host.
//
// A Snapshotter records the stat data of every path under its root (mode, size, mtime and ctime
// in nanoseconds, inode, owner) and, after each instruction, compares a fresh walk against that
// record: content is never hashed where stat data decides. Each layer is streamed:
// tar -> parallel compression -> file, with the compressed digest and the uncompressed diffID
// computed in the same pass, so no layer is held in memory or compressed twice.
package snapshot
