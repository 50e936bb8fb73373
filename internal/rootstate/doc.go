// Package rootstate keeps unpacked image layers on disk so that a directory-mode rebuild can
// make its root from them instead of unpacking layer archives again.
//
// A Store holds one directory per layer, named by the layer's diffID and written in overlayfs
// form: a deleted path is a 0/0 character device, a directory replaced wholesale carries the
// trusted.overlay.opaque xattr. A root state is an ordered list of such layers (a chain). It
// becomes a root either as an overlay mount of the layer directories (Mount: constant time,
// the layers stay read-only and the root's changes go to a fresh upper directory) or, where
// the process may not mount overlays, by merging copies of them into a plain directory (Merge:
// data copied with copy_file_range, or cloned where the file system can).
//
// Layer directories are written under a temporary name and renamed into place with a marker
// file written last, so a reader never sees a partial one; each build holds a shared lock on
// the store while it uses it, and pruning (least recently used first) runs only when it can
// take the lock exclusively.
package rootstate
