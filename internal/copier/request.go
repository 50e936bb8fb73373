package copier

import (
	"net/http"
	"os"
)

// Request describes one COPY or ADD instruction after ARG/ENV expansion.
type Request struct {
	// SrcRoot is the host directory sources are relative to: the build context,
	// or a stage or image root for COPY --from.
	SrcRoot string
	// Sources are the source paths as written; they may contain globs
	// (filepath.Match syntax per component). A leading "/" is relative to
	// SrcRoot too. For Add, a source may also be an http(s) URL.
	Sources []string
	// Exclude reports whether a slash-separated path relative to SrcRoot is
	// excluded (.dockerignore). Nil excludes nothing.
	Exclude func(rel string) bool
	// Root is the host path of the image root being built.
	Root string
	// Dest is the destination as written; a relative one is relative to
	// WorkDir, and a trailing "/" means a directory.
	Dest string
	// WorkDir is the image's working directory (an image path).
	WorkDir string
	// UID and GID own everything written; -1 keeps the source's owner (for
	// created parent directories, -1 means 0).
	UID, GID int
	// Mode, when set (--chmod), replaces the permission bits of every file
	// and directory copied. Special bits use fs.ModeSetuid, fs.ModeSetgid and
	// fs.ModeSticky (as os.Chmod does), not 0o4000 and friends.
	Mode *os.FileMode
	// Ignore reports image paths that must never be written (the pod-mode
	// ignore list). Nil ignores nothing.
	Ignore func(imagePath string) bool
	// Parents is COPY --parents: each source keeps its path (relative to
	// SrcRoot, or to a "/./" pivot in it) below Dest (see ParentsSource).
	Parents bool
}

// AddOptions are the options only ADD has.
type AddOptions struct {
	// Checksum, when set, is the expected digest of a remote source as
	// "sha256:<hex>" (sha384 and sha512 are accepted too).
	Checksum string
	// Chown says --chown was given, so UID/GID also own the entries of
	// extracted archives. Without it, extracted entries keep the owners the
	// archive records, as Docker does (UID/GID still own other sources).
	Chown bool
	// Client downloads remote sources; nil uses a plain http.Client.
	Client *http.Client
	// KeepGitDir is ADD --keep-git-dir; it only matters for the error message
	// about a Git source that Fetch does not take.
	KeepGitDir bool
	// Fetch, when set, is offered every source first: one it takes (ok) was
	// fetched by the caller (a Git repository's checkout) and is copied as a
	// local directory (or file) source, with its own exclusions.
	Fetch func(src string) (f Fetched, ok bool, err error)
	// Unpack is ADD --unpack: nil extracts local archives and not remote
	// ones (the default); true extracts both; false extracts neither.
	Unpack *bool
}

// Fetched is a source the caller fetched into the host filesystem.
type Fetched struct {
	// Path is the fetched directory or file.
	Path string
	// Exclude reports whether a path relative to Path is left out (--exclude
	// patterns; a context's .dockerignore does not apply). Nil keeps all.
	Exclude func(rel string) bool
}
