package buildcontext

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/kilnbuild/kiln/internal/decompress"
	"github.com/kilnbuild/kiln/snapshot"
)

// unpackFile unpacks the archive at path (tar://PATH).
func unpackFile(ctx context.Context, path string, o Options) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return unpackInto(ctx, f, path, o)
}

// unpackStdin unpacks the archive streamed on standard input (tar://stdin).
func unpackStdin(ctx context.Context, o Options) (string, error) {
	if o.Stdin == nil {
		return "", errors.New("no standard input to read the context archive from")
	}
	if f, ok := o.Stdin.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			// A terminal: the caller forgot to pipe the archive in (kubectl run -i, docker run -i).
			return "", errors.New("standard input is a terminal, not a tar archive: pipe the archive in (and run interactively, e.g. -i)")
		}
	}
	return unpackInto(ctx, o.Stdin, "standard input", o)
}

// unpackURL downloads and unpacks an archive over http(s), streaming.
func unpackURL(ctx context.Context, rawURL string, o Options) (string, error) {
	client := o.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("server answered %s", resp.Status)
	}
	return unpackInto(ctx, resp.Body, "the downloaded archive", o)
}

// unpackInto unpacks r into a fresh work directory; what names r in errors.
func unpackInto(ctx context.Context, r io.Reader, what string, o Options) (string, error) {
	dir, err := workDir(o)
	if err != nil {
		return "", err
	}
	if err := untar(ctx, r, dir); err != nil {
		return "", fmt.Errorf("unpacking %s into %s: %w", what, dir, err)
	}
	return dir, nil
}

// untar decompresses r (gzip, zstd, xz, bzip2 or none, recognised by content) and extracts the
// tar into dir with snapshot.Extract, which keeps every entry inside dir: ".." paths are
// rejected and symlinks are never followed out of it.
func untar(ctx context.Context, r io.Reader, dir string) error {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(6)
	if len(head) == 0 {
		if err == nil || errors.Is(err, io.EOF) {
			return errors.New("the archive is empty")
		}
		return err
	}
	stream, closeFn, err := decompress.Reader(br)
	if err != nil {
		return err
	}
	defer closeFn()
	if err := snapshot.Extract(ctx, dir, stream); err != nil {
		return err
	}
	// Drain what follows the tar's end marker so a truncated or corrupt gzip trailer is
	// reported rather than ignored.
	_, err = io.Copy(io.Discard, stream)
	return err
}
