// Package buildcontext turns the executor's --context into a local directory, as Kaniko does:
// a local directory (dir://PATH or a plain path), a tar archive (tar://PATH, or tar://stdin for
// one streamed on standard input), a tar archive over http(s), or a git repository (git://).
// Archives are gzip-compressed or plain tar, and are unpacked safely: no entry lands outside the
// unpack directory. Cloud buckets (gs://, s3://, Azure blob URLs) are recognised and refused
// with a clear error.
package buildcontext
