package copier

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// isURL reports whether an ADD source is a remote http(s) URL.
func isURL(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")
}

// isGitURL reports whether an ADD source names a Git repository.
func isGitURL(s string) bool {
	l := strings.ToLower(s)
	if strings.HasPrefix(l, "git://") || strings.HasPrefix(l, "git@") || strings.HasPrefix(l, "ssh://") {
		return true
	}
	if !isURL(s) {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && strings.HasSuffix(u.Path, ".git")
}

// checksum is a parsed ADD --checksum.
type checksum struct {
	algo string
	hex  string
	new  func() hash.Hash
}

// parseChecksum parses "sha256:<hex>" (or sha384/sha512); empty means none.
func parseChecksum(s string) (*checksum, error) {
	if s == "" {
		return nil, nil
	}
	algo, h, ok := strings.Cut(s, ":")
	c := &checksum{algo: algo, hex: strings.ToLower(h)}
	size := 0
	switch algo {
	case "sha256":
		c.new, size = sha256.New, sha256.Size
	case "sha384":
		c.new, size = sha512.New384, sha512.Size384
	case "sha512":
		c.new, size = sha512.New, sha512.Size
	}
	if b, err := hex.DecodeString(c.hex); !ok || c.new == nil || err != nil || len(b) != size {
		return nil, fmt.Errorf("invalid checksum %q: want sha256:<64 hex digits>", s)
	}
	return c, nil
}

// download fetches a remote source into the destination. It is never
// extracted. The body goes to a temporary file first so that a failed
// download or checksum leaves the root untouched.
func (j *job) download(rawURL string, d dest, intoDir bool, sum *checksum, o AddOptions) error {
	target, err := downloadTarget(rawURL, d, intoDir)
	if err != nil {
		return err
	}
	unpack := o.Unpack != nil && *o.Unpack
	if j.ignored(j.imagePath(target)) && !unpack {
		return nil
	}
	client := o.Client
	if client == nil {
		client = &http.Client{}
	}
	tmp, mtime, err := j.fetch(rawURL, sum, client)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if unpack {
		archive, err := isArchive(tmp)
		if err != nil {
			return err
		}
		if archive {
			return j.unpackDownload(tmp, rawURL, d, o.Chown)
		}
	}
	return j.place(tmp, mtime, target, d, intoDir)
}

// downloadTarget is where a downloaded file goes: the destination, or in it the URL's last
// path element.
func downloadTarget(rawURL string, d dest, intoDir bool) (string, error) {
	if !intoDir {
		return d.host, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("parse URL %s: %w", rawURL, err)
	}
	name := path.Base(u.Path)
	if name == "" || name == "." || name == "/" {
		return "", fmt.Errorf("cannot determine a file name from URL %s; give a destination file name", rawURL)
	}
	return filepath.Join(d.host, name), nil
}

// unpackDownload extracts a downloaded archive into the destination directory (--unpack).
func (j *job) unpackDownload(tmp, rawURL string, d dest, chown bool) error {
	if d.exists && !d.isDir {
		return fmt.Errorf("cannot extract an archive into %s: not a directory", d.img)
	}
	if err := j.mkdirParents(d.host); err != nil {
		return err
	}
	return j.extract(tmp, rawURL, d, chown)
}

// place installs a downloaded file at target.
func (j *job) place(tmp string, mtime time.Time, target string, d dest, intoDir bool) error {
	img := j.imagePath(target)
	if j.ignored(img) {
		return nil
	}
	if intoDir {
		if err := j.mkdirParents(d.host); err != nil {
			return err
		}
	} else if err := j.mkdirParents(filepath.Dir(target)); err != nil {
		return err
	}
	if err := j.removeExisting(target); err != nil {
		return err
	}
	if err := install(tmp, target); err != nil {
		return fmt.Errorf("write %s: %w", img, err)
	}
	j.record(img)
	uid, gid := j.parentOwner()
	m := meta{uid: uid, gid: gid, mode: 0o600, mtime: mtime}
	if j.req.Mode != nil {
		m.mode = *j.req.Mode & permBits
	}
	if err := m.apply(target); err != nil {
		return fmt.Errorf("set metadata of %s: %w", img, err)
	}
	return setTimes(target, m.mtime)
}

// fetch downloads url to a temporary file, verifying sum when given. It
// returns the file and the mtime to use (Last-Modified, or now).
func (j *job) fetch(rawURL string, sum *checksum, client *http.Client) (string, time.Time, error) {
	req, err := http.NewRequestWithContext(j.ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("download %s: %w", rawURL, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("download %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", time.Time{}, fmt.Errorf("download %s: unexpected HTTP status %s", rawURL, resp.Status)
	}
	mtime := time.Now()
	if lm := resp.Header.Get("Last-Modified"); lm != "" {
		if t, err := http.ParseTime(lm); err == nil {
			mtime = t
		}
	}
	f, err := os.CreateTemp("", "kiln-add-*")
	if err != nil {
		return "", time.Time{}, fmt.Errorf("download %s: %w", rawURL, err)
	}
	var h hash.Hash
	var w io.Writer = f
	if sum != nil {
		h = sum.new()
		w = io.MultiWriter(f, h)
	}
	_, err = io.Copy(w, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", time.Time{}, fmt.Errorf("download %s: %w", rawURL, err)
	}
	if sum != nil {
		if got := hex.EncodeToString(h.Sum(nil)); got != sum.hex {
			os.Remove(f.Name())
			return "", time.Time{}, fmt.Errorf("checksum mismatch for %s: expected %s:%s, got %s:%s",
				rawURL, sum.algo, sum.hex, sum.algo, got)
		}
	}
	return f.Name(), mtime, nil
}

// install moves a temporary file into place, copying across filesystems.
func install(tmp, target string) error {
	err := os.Rename(tmp, target)
	if !errors.Is(err, syscall.EXDEV) {
		return err
	}
	return copyFileData(tmp, target)
}
