// Package users resolves users and groups the way a container sees them:
// from the image root's /etc/passwd and /etc/group, never from the host.
package users

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// passwdEntry is one parsed line of /etc/passwd.
type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

// groupEntry is one parsed line of /etc/group.
type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// openInRoot opens an image file, resolving symlinks inside root so an
// image cannot point the lookup at the host's files. A missing file gives
// (nil, nil): images without /etc/passwd are common.
func openInRoot(root, imagePath string) (*os.File, error) {
	p, err := securejoin.SecureJoin(root, imagePath)
	if err != nil {
		return nil, fmt.Errorf("resolve %s in %s: %w", imagePath, root, err)
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open %s of image root %s: %w", imagePath, root, err)
	}
	return f, nil
}

// readLines calls fn with the colon-separated fields of every line of an
// image file that is neither blank nor a comment.
func readLines(root, imagePath string, fn func(fields []string)) error {
	f, err := openInRoot(root, imagePath)
	if err != nil || f == nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadString('\n')
		if text := strings.TrimSpace(line); text != "" && !strings.HasPrefix(text, "#") {
			fn(strings.Split(text, ":"))
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s of image root %s: %w", imagePath, root, err)
		}
	}
}

// readPasswd parses root/etc/passwd. Lines too short or with non-numeric
// ids are skipped, as libc does.
func readPasswd(root string) ([]passwdEntry, error) {
	var out []passwdEntry
	err := readLines(root, "/etc/passwd", func(f []string) {
		if len(f) < 4 {
			return
		}
		uid, err1 := parseID(f[2])
		gid, err2 := parseID(f[3])
		if err1 != nil || err2 != nil {
			return
		}
		e := passwdEntry{name: f[0], uid: uid, gid: gid}
		if len(f) > 5 {
			e.home = f[5]
		}
		out = append(out, e)
	})
	return out, err
}

// readGroup parses root/etc/group.
func readGroup(root string) ([]groupEntry, error) {
	var out []groupEntry
	err := readLines(root, "/etc/group", func(f []string) {
		if len(f) < 3 {
			return
		}
		gid, err := parseID(f[2])
		if err != nil {
			return
		}
		e := groupEntry{name: f[0], gid: gid}
		if len(f) > 3 {
			for _, m := range strings.Split(f[3], ",") {
				if m = strings.TrimSpace(m); m != "" {
					e.members = append(e.members, m)
				}
			}
		}
		out = append(out, e)
	})
	return out, err
}

// parseID parses a numeric user or group id.
func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err
}

// isNumeric reports whether s is written as a number (then it is an id,
// never a name, as in runc).
func isNumeric(s string) bool {
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}
