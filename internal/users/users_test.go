package users

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const testPasswd = `# users of the test image
root:x:0:0:root:/root:/bin/sh

daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
  # an indented comment
app:x:1000:1001:App User,,,:/home/app:/bin/sh
short:x:7
broken:x:notanumber:5::/x:/bin/sh
nohome:x:1500:1500
`

const testGroup = `# groups
root:x:0:
daemon:x:1:
appgroup:x:1001:
docker:x:999:app,other
audio:x:29:other, app
wheel:x:10:root
staff:x:50:
`

// imageRoot makes a root with the given /etc/passwd and /etc/group ("" =
// file absent).
func imageRoot(t *testing.T, passwd, group string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"passwd": passwd, "group": group} {
		if data == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestResolve(t *testing.T) {
	root := imageRoot(t, testPasswd, testGroup)
	tests := []struct {
		spec string
		want Identity
	}{
		{"", Identity{UID: 0, GID: 0, Groups: []uint32{10}, Home: "/root", Name: "root"}},
		{"root", Identity{UID: 0, GID: 0, Groups: []uint32{10}, Home: "/root", Name: "root"}},
		{"app", Identity{UID: 1000, GID: 1001, Groups: []uint32{999, 29}, Home: "/home/app", Name: "app"}},
		{"1000", Identity{UID: 1000, GID: 1001, Groups: []uint32{999, 29}, Home: "/home/app", Name: "app"}},
		{"app:staff", Identity{UID: 1000, GID: 50, Home: "/home/app", Name: "app"}},
		{"app:4242", Identity{UID: 1000, GID: 4242, Home: "/home/app", Name: "app"}},
		{"1000:999", Identity{UID: 1000, GID: 999, Home: "/home/app", Name: "app"}},
		{"4321", Identity{UID: 4321, GID: 0, Home: "/"}},
		{"4321:77", Identity{UID: 4321, GID: 77, Home: "/"}},
		{"4321:staff", Identity{UID: 4321, GID: 50, Home: "/"}},
		{"nohome", Identity{UID: 1500, GID: 1500, Home: "/", Name: "nohome"}},
		{"daemon", Identity{UID: 1, GID: 1, Home: "/usr/sbin", Name: "daemon"}},
	}
	for _, tc := range tests {
		got, err := Resolve(root, tc.spec)
		if err != nil {
			t.Errorf("Resolve(%q): %v", tc.spec, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Resolve(%q) = %+v, want %+v", tc.spec, got, tc.want)
		}
	}
}

func TestResolveErrors(t *testing.T) {
	root := imageRoot(t, testPasswd, testGroup)
	for spec, want := range map[string]string{
		"nosuch":          "unable to find user nosuch: no matching entries in passwd file",
		"app:nogroup":     "unable to find group nogroup: no matching entries in group file",
		"broken":          "unable to find user broken: no matching entries in passwd file",
		"99999999999":     "invalid user id 99999999999",
		"app:99999999999": "invalid group id 99999999999",
	} {
		_, err := Resolve(root, spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Resolve(%q) error %v, want %q", spec, err, want)
		}
	}
}

func TestResolveWithoutFiles(t *testing.T) {
	root := imageRoot(t, "", "")
	got, err := Resolve(root, "1234:5678")
	if err != nil || !reflect.DeepEqual(got, Identity{UID: 1234, GID: 5678, Home: "/"}) {
		t.Fatalf("numeric ids without passwd: %+v %v", got, err)
	}
	got, err = Resolve(root, "")
	if err != nil || !reflect.DeepEqual(got, Identity{Home: "/"}) {
		t.Fatalf("empty spec without passwd: %+v %v", got, err)
	}
	if _, err := Resolve(root, "app"); err == nil || !strings.Contains(err.Error(), "passwd file") {
		t.Fatalf("name without passwd: %v", err)
	}
	if _, err := Resolve(root, "1:staff"); err == nil || !strings.Contains(err.Error(), "group file") {
		t.Fatalf("group name without group file: %v", err)
	}
}

func TestResolveReadsOnlyInsideRoot(t *testing.T) {
	// /etc/passwd is an absolute symlink; it must resolve inside the root,
	// not to the host's /etc/passwd (which knows hostUser).
	hostUser := hostOnlyUser(t)
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd.real", filepath.Join(root, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	if _, err := Resolve(root, hostUser); err == nil {
		t.Fatalf("resolved %s through the host's passwd", hostUser)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "passwd.real"), []byte("root:x:0:0::/r:/bin/sh\nimg:x:5:6::/i:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Resolve(root, "img")
	if err != nil || got.UID != 5 || got.GID != 6 || got.Home != "/i" {
		t.Fatalf("symlinked passwd inside root: %+v %v", got, err)
	}
	// An unreadable passwd (a directory) is an error naming the file.
	if err := os.Remove(filepath.Join(root, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "etc", "passwd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Resolve(root, "img"); err == nil || !strings.Contains(err.Error(), "/etc/passwd") {
		t.Fatalf("passwd directory: %v", err)
	}
}

// hostOnlyUser names a user of the host's /etc/passwd other than root (which
// resolves without any entry).
func hostOnlyUser(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Skipf("needs the host's /etc/passwd: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if name, _, ok := strings.Cut(line, ":"); ok && name != "" && name != rootName && !strings.HasPrefix(name, "#") {
			return name
		}
	}
	t.Skip("the host's /etc/passwd names no user but root")
	return ""
}

func TestResolveChown(t *testing.T) {
	root := imageRoot(t, testPasswd, testGroup)
	tests := []struct {
		spec     string
		uid, gid int
	}{
		{"", 0, 0},
		{"10", 10, 10},
		{"1000", 1000, 1000}, // numeric: same number, even though passwd says 1001
		{"app", 1000, 1001},
		{"app:staff", 1000, 50},
		{"app:77", 1000, 77},
		{"55:docker", 55, 999},
		{"10:11", 10, 11},
		{":staff", 0, 50},
		{"daemon", 1, 1},
	}
	for _, tc := range tests {
		uid, gid, err := ResolveChown(root, tc.spec)
		if err != nil || uid != tc.uid || gid != tc.gid {
			t.Errorf("ResolveChown(%q) = %d:%d %v, want %d:%d", tc.spec, uid, gid, err, tc.uid, tc.gid)
		}
	}
	for spec, want := range map[string]string{
		"nosuch":     "unable to find user nosuch",
		"app:nosuch": "unable to find group nosuch",
	} {
		if _, _, err := ResolveChown(root, spec); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ResolveChown(%q) error %v, want %q", spec, err, want)
		}
	}
	// Numeric values need no files at all.
	bare := imageRoot(t, "", "")
	if uid, gid, err := ResolveChown(bare, "12:34"); err != nil || uid != 12 || gid != 34 {
		t.Fatalf("bare root: %d:%d %v", uid, gid, err)
	}
}

// TestRootWithoutEntries: "root" names uid 0 and group 0 even where the image has no passwd
// or group file, or files that lack root (FROM scratch), as Kaniko and BuildKit resolve it;
// numeric ids need no entries either.
func TestRootWithoutEntries(t *testing.T) {
	for name, root := range map[string]string{
		"no files":        imageRoot(t, "", ""),
		"files sans root": imageRoot(t, "app:x:1000:1001::/home/app:/bin/sh\n", "appgroup:x:1001:\n"),
	} {
		for spec, want := range map[string]Identity{
			"root":      {UID: 0, GID: 0, Home: "/root", Name: "root"},
			"root:root": {UID: 0, GID: 0, Home: "/root", Name: "root"},
			"root:7":    {UID: 0, GID: 7, Home: "/root", Name: "root"},
			"0:root":    {UID: 0, GID: 0, Home: "/"},
			"42:root":   {UID: 42, GID: 0, Home: "/"},
			"42":        {UID: 42, GID: 0, Home: "/"},
			"42:43":     {UID: 42, GID: 43, Home: "/"},
		} {
			got, err := Resolve(root, spec)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("%s: Resolve(%q) = %+v, %v; want %+v", name, spec, got, err, want)
			}
		}
		for spec, want := range map[string][2]int{
			"root": {0, 0}, "root:root": {0, 0}, "5:root": {5, 0}, "root:9": {0, 9}, ":root": {0, 0},
		} {
			uid, gid, err := ResolveChown(root, spec)
			if err != nil || uid != want[0] || gid != want[1] {
				t.Errorf("%s: ResolveChown(%q) = %d:%d %v, want %d:%d", name, spec, uid, gid, err, want[0], want[1])
			}
		}
		if _, err := Resolve(root, "nosuch"); err == nil {
			t.Errorf("%s: an unknown name other than root must stay an error", name)
		}
	}
}
