package users

import "strings"

// ResolveChown resolves a COPY/ADD --chown value against the image root,
// following BuildKit:
//
//   - "10" gives 10:10: a numeric user alone also sets the group to the
//     same number, whether or not passwd knows it;
//   - "name" gives the user's uid and its primary gid from /etc/passwd;
//   - "user:group" takes the group by number or, for a name, from
//     /etc/group; ":group" leaves the user at 0.
//
// Unknown names are errors (as in Docker's classic builder and Kaniko;
// older BuildKit silently used 0). The empty value gives 0:0.
func ResolveChown(root, spec string) (uid, gid int, err error) {
	userPart, groupPart, _ := strings.Cut(spec, ":")
	var u, g uint32
	if userPart != "" {
		if isNumeric(userPart) {
			if u, err = parseID(userPart); err != nil {
				return 0, 0, err
			}
			g = u
		} else {
			passwd, err := readPasswd(root)
			if err != nil {
				return 0, 0, err
			}
			entry, _, err := findUser(passwd, userPart)
			if err != nil {
				return 0, 0, err
			}
			u, g = entry.uid, entry.gid
		}
	}
	if groupPart != "" {
		var groups []groupEntry
		if !isNumeric(groupPart) {
			if groups, err = readGroup(root); err != nil {
				return 0, 0, err
			}
		}
		if g, err = findGroup(groups, groupPart); err != nil {
			return 0, 0, err
		}
	}
	return int(u), int(g), nil
}
