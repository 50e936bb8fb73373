package snapshot

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// paxXattrPrefix is how tar carries extended attributes (GNU tar, Docker and Kaniko agree).
const paxXattrPrefix = "SCHILY.xattr."

// readXattrs returns every extended attribute of host (symlinks not followed), or nil.
func readXattrs(host string) (map[string]string, error) {
	size, err := unix.Llistxattr(host, nil)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, fmt.Errorf("listing xattrs of %s: %w", host, err)
	}
	if size == 0 {
		return nil, nil
	}
	buf := make([]byte, size)
	size, err = unix.Llistxattr(host, buf)
	if err != nil {
		return nil, fmt.Errorf("listing xattrs of %s: %w", host, err)
	}
	out := map[string]string{}
	for _, name := range strings.Split(string(buf[:size]), "\x00") {
		if name == "" {
			continue
		}
		val, err := getXattr(host, name)
		if err != nil {
			if errors.Is(err, unix.ENODATA) {
				continue // removed between list and get
			}
			return nil, fmt.Errorf("reading xattr %s of %s: %w", name, host, err)
		}
		out[name] = val
	}
	return out, nil
}

func getXattr(host, name string) (string, error) {
	size, err := unix.Lgetxattr(host, name, nil)
	if err != nil {
		return "", err
	}
	buf := make([]byte, size)
	size, err = unix.Lgetxattr(host, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:size]), nil
}

// writeXattrs sets the xattrs carried by PAX records on host (symlinks not followed).
// Attributes the filesystem cannot store are skipped rather than failing the whole layer.
func writeXattrs(host string, pax map[string]string) error {
	for k, v := range pax {
		name, ok := strings.CutPrefix(k, paxXattrPrefix)
		if !ok {
			continue
		}
		if err := unix.Lsetxattr(host, name, []byte(v), 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) {
				continue
			}
			return fmt.Errorf("setting xattr %s on %s: %w", name, host, err)
		}
	}
	return nil
}

// fsetXattrs is writeXattrs through an open descriptor.
func fsetXattrs(fd int, host string, pax map[string]string) error {
	for k, v := range pax {
		name, ok := strings.CutPrefix(k, paxXattrPrefix)
		if !ok {
			continue
		}
		if err := unix.Fsetxattr(fd, name, []byte(v), 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) {
				continue
			}
			return fmt.Errorf("setting xattr %s on %s: %w", name, host, err)
		}
	}
	return nil
}
