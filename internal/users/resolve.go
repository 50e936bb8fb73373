package users

import (
	"fmt"
	"slices"
	"strings"
)

// Identity is who a RUN instruction's process runs as.
type Identity struct {
	// UID and GID are the user and primary group ids.
	UID, GID uint32
	// Groups are the supplementary group ids: the groups in /etc/group
	// that list the user as a member. They are only looked up when the
	// group was not given explicitly, as runc does.
	Groups []uint32
	// Home is the user's home directory from /etc/passwd, "/" if unknown.
	Home string
	// Name is the user's name from /etc/passwd, "" if the uid has none.
	Name string
}

// Resolve resolves a USER value ("user", "user:group", "uid", "uid:gid",
// names or numbers) against root/etc/passwd and root/etc/group, read inside
// the root. A numeric uid absent from passwd is allowed (gid 0 unless
// given, home "/"), and so is the name root (uid 0, gid 0, home /root);
// any other unknown name is an error naming it and the file. The empty
// spec means uid 0.
func Resolve(root, spec string) (Identity, error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if userPart == "" {
		userPart = "0"
	}
	passwd, err := readPasswd(root)
	if err != nil {
		return Identity{}, err
	}
	id := Identity{Home: "/"}
	entry, found, err := findUser(passwd, userPart)
	if err != nil {
		return Identity{}, err
	}
	if found {
		id.UID, id.GID, id.Name = entry.uid, entry.gid, entry.name
		if entry.home != "" {
			id.Home = entry.home
		}
	} else {
		id.UID, _ = parseID(userPart)
	}

	if !hasGroup && !found {
		return id, nil
	}
	groups, err := readGroup(root)
	if err != nil {
		return Identity{}, err
	}
	if hasGroup && groupPart != "" {
		gid, err := findGroup(groups, groupPart)
		if err != nil {
			return Identity{}, err
		}
		id.GID = gid
		return id, nil
	}
	for _, g := range groups {
		if slices.Contains(g.members, id.Name) {
			id.Groups = append(id.Groups, g.gid)
		}
	}
	return id, nil
}

// rootName is the one name that resolves without an entry: images built FROM
// scratch have no passwd or group file, yet Kaniko and BuildKit accept
// USER root and --chown=root:root there.
const rootName = "root"

// findUser looks a user up by number or by name. A number without an
// entry is fine (found false); a name without one is an error, except root.
func findUser(passwd []passwdEntry, user string) (passwdEntry, bool, error) {
	if isNumeric(user) {
		uid, err := parseID(user)
		if err != nil {
			return passwdEntry{}, false, fmt.Errorf("invalid user id %s: %w", user, err)
		}
		for _, e := range passwd {
			if e.uid == uid {
				return e, true, nil
			}
		}
		return passwdEntry{}, false, nil
	}
	for _, e := range passwd {
		if e.name == user {
			return e, true, nil
		}
	}
	if user == rootName {
		return passwdEntry{name: rootName, home: "/root"}, true, nil
	}
	return passwdEntry{}, false, fmt.Errorf("unable to find user %s: no matching entries in passwd file", user)
}

// findGroup returns the gid of a group given by number (entry or not) or
// by name (which must exist, except root: gid 0).
func findGroup(groups []groupEntry, group string) (uint32, error) {
	if isNumeric(group) {
		gid, err := parseID(group)
		if err != nil {
			return 0, fmt.Errorf("invalid group id %s: %w", group, err)
		}
		return gid, nil
	}
	for _, g := range groups {
		if g.name == group {
			return g.gid, nil
		}
	}
	if group == rootName {
		return 0, nil
	}
	return 0, fmt.Errorf("unable to find group %s: no matching entries in group file", group)
}
