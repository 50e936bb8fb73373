package snapshot

import "os"

// IgnoreFunc reports whether an image path (and everything under it) is excluded: never
// snapshotted, never deleted, never overwritten by extraction.
type IgnoreFunc func(imagePath string) bool

// Compression selects how layer files are compressed.
type Compression struct {
	// Algorithm is "gzip" (the default when empty) or "zstd".
	Algorithm string
	// Level is the compressor's level; 0 means the algorithm's default.
	Level int
}

// Option configures a Snapshotter or Extract.
type Option func(*options)

// options holds the settings shared by snapshotting and extraction.
type options struct {
	ignore       IgnoreFunc
	compression  Compression
	reproducible bool
	layerDir     string
	progress     func(entries int, bytes int64)
	every        int
	workers      int // Extract's file writers; see WithExtractWorkers
}

// WithProgress calls f while a layer is written, after every `every` entries, with the
// entries and content bytes written so far, so that snapshotting a large tree visibly moves.
func WithProgress(every int, f func(entries int, bytes int64)) Option {
	return func(o *options) { o.progress, o.every = f, every }
}

// WithIgnore excludes the paths for which f returns true (and everything below them).
func WithIgnore(f IgnoreFunc) Option {
	return func(o *options) { o.ignore = f }
}

// WithCompression selects the layer compression algorithm and level.
func WithCompression(c Compression) Option {
	return func(o *options) { o.compression = c }
}

// WithReproducible zeroes tar mtimes (epoch 0) so the same inputs give the same digest.
func WithReproducible(on bool) Option {
	return func(o *options) { o.reproducible = on }
}

// WithLayerDir sets the directory layer files are written to (default os.TempDir()). The
// directory must exist; Take does not create it.
func WithLayerDir(dir string) Option {
	return func(o *options) { o.layerDir = dir }
}

func buildOptions(opts []Option) options {
	o := options{}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.layerDir == "" {
		o.layerDir = os.TempDir()
	}
	return o
}

// ignored reports whether imagePath is excluded by the ignore function.
func (o *options) ignored(imagePath string) bool {
	return o.ignore != nil && o.ignore(imagePath)
}

// ignoredTree reports whether imagePath or one of its ancestors is excluded. Walks never descend
// into ignored paths, but extraction and TakePaths get arbitrary paths, so they check them all.
func (o *options) ignoredTree(imagePath string) bool {
	if o.ignore == nil {
		return false
	}
	for p := imagePath; p != "/"; p = parentPath(p) {
		if o.ignore(p) {
			return true
		}
	}
	return false
}
