package snapshot

import (
	"archive/tar"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func extractTar(t *testing.T, root string, hdrs []*tar.Header, content map[string]string, opts ...Option) error {
	t.Helper()
	return Extract(context.Background(), root, buildTar(t, hdrs, content), opts...)
}

func readString(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustNotExist(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Lstat(p); !os.IsNotExist(err) {
		t.Fatalf("%s exists (err %v), want it absent", p, err)
	}
}

func TestExtractStaysInsideRoot(t *testing.T) {
	outside := t.TempDir() // stands in for the host outside the root
	victim := filepath.Join(outside, "victim")
	if err := os.WriteFile(victim, []byte("safe"), 0o644); err != nil {
		t.Fatal(err)
	}
	escapeName := "kiln-escape-" + filepath.Base(outside)
	root := t.TempDir()
	err := extractTar(t, root, []*tar.Header{
		{Name: "toroot", Typeflag: tar.TypeSymlink, Linkname: "/"},
		{Name: "toroot/tmp/" + escapeName, Typeflag: tar.TypeReg},
		{Name: "up", Typeflag: tar.TypeSymlink, Linkname: "../../../../../../.."},
		{Name: "up/" + escapeName, Typeflag: tar.TypeReg},
		{Name: "out", Typeflag: tar.TypeSymlink, Linkname: outside},
		{Name: "out/victim", Typeflag: tar.TypeReg},
		{Name: "out/.wh.victim", Typeflag: tar.TypeReg},
		{Name: "out/.wh..wh..opq", Typeflag: tar.TypeReg},
		{Name: "leaf", Typeflag: tar.TypeSymlink, Linkname: victim},
		{Name: "leaf", Typeflag: tar.TypeReg},
	}, map[string]string{
		"toroot/tmp/" + escapeName: "1",
		"up/" + escapeName:         "2",
		"out/victim":               "pwned",
		"leaf":                     "pwned",
	})
	if err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, "/tmp/"+escapeName)
	mustNotExist(t, "/"+escapeName)
	if got := readString(t, victim); got != "safe" {
		t.Fatalf("file outside the root was changed to %q", got)
	}
	if got := readString(t, filepath.Join(root, "tmp", escapeName)); got != "1" {
		t.Fatalf("entry through symlink to / landed wrong: %q", got)
	}
	if got := readString(t, filepath.Join(root, escapeName)); got != "2" {
		t.Fatalf("entry through ../.. symlink landed wrong: %q", got)
	}
	if got := readString(t, filepath.Join(root, outside, "victim")); got != "pwned" {
		t.Fatalf("entry through absolute symlink not re-rooted: %q", got)
	}
	if fi, err := os.Lstat(filepath.Join(root, "leaf")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("file over a symlink should replace the symlink: %v %v", fi, err)
	}
}

func TestExtractRejectsDotDot(t *testing.T) {
	for _, h := range []*tar.Header{
		{Name: "../x", Typeflag: tar.TypeReg},
		{Name: "a/../../x", Typeflag: tar.TypeReg},
		{Name: "/../../x", Typeflag: tar.TypeDir},
		{Name: "../.wh.x", Typeflag: tar.TypeReg},
		{Name: "link", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"},
	} {
		root := t.TempDir()
		err := extractTar(t, root, []*tar.Header{h}, nil)
		if err == nil || !strings.Contains(err.Error(), "escapes the root") {
			t.Errorf("entry %q -> %q: err = %v, want an escape error", h.Name, h.Linkname, err)
		}
	}
	// ".." that stays inside is just a path.
	root := t.TempDir()
	if err := extractTar(t, root, []*tar.Header{{Name: "a/../b", Typeflag: tar.TypeReg}}, map[string]string{"a/../b": "ok"}); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, filepath.Join(root, "b")); got != "ok" {
		t.Fatalf("b = %q", got)
	}
}

func TestExtractReplacesTypes(t *testing.T) {
	root := t.TempDir()
	f := fsOps{t: t, root: root}
	f.write("/a", "file", 0o644)
	f.write("/c/d/e", "deep", 0o644)
	f.write("/target/orig", "orig", 0o644)
	f.must(os.Symlink("target", f.host("/s")))
	f.write("/h", "old", 0o644)
	f.must(os.Link(f.host("/h"), f.host("/h-other")))
	err := extractTar(t, root, []*tar.Header{
		{Name: "a/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "a/b", Typeflag: tar.TypeReg},
		{Name: "c", Typeflag: tar.TypeReg},
		{Name: "s/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "s/f", Typeflag: tar.TypeReg},
		{Name: "h", Typeflag: tar.TypeReg},
	}, map[string]string{"a/b": "b", "c": "now file", "s/f": "f", "h": "new"})
	if err != nil {
		t.Fatal(err)
	}
	if got := readString(t, f.host("/a/b")); got != "b" {
		t.Fatalf("a/b = %q", got)
	}
	if got := readString(t, f.host("/c")); got != "now file" {
		t.Fatalf("c = %q", got)
	}
	if fi, err := os.Lstat(f.host("/s")); err != nil || !fi.IsDir() {
		t.Fatalf("s should now be a real directory: %v %v", fi, err)
	}
	mustNotExist(t, f.host("/target/f"))
	if got := readString(t, f.host("/target/orig")); got != "orig" {
		t.Fatalf("symlink target changed: %q", got)
	}
	if got := readString(t, f.host("/h-other")); got != "old" {
		t.Fatalf("rewriting h wrote through its hardlink: h-other = %q", got)
	}
}

func TestExtractWhiteoutsAndIgnore(t *testing.T) {
	root := t.TempDir()
	f := fsOps{t: t, root: root}
	f.write("/keep/x", "orig", 0o644)
	f.write("/etc/hosts", "host-managed", 0o644)
	f.write("/etc/old", "old", 0o644)
	f.write("/del/sub/file", "d", 0o644)
	f.write("/top", "t", 0o644)
	f.write("/opq/lower", "l", 0o644)
	ignore := WithIgnore(func(p string) bool { return p == "/keep" || p == "/etc/hosts" })
	err := extractTar(t, root, []*tar.Header{
		{Name: "keep/x", Typeflag: tar.TypeReg},
		{Name: "keep/y", Typeflag: tar.TypeReg},
		{Name: ".wh.keep", Typeflag: tar.TypeReg},
		{Name: ".wh.del", Typeflag: tar.TypeReg},
		{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "etc/.wh..wh..opq", Typeflag: tar.TypeReg},
		{Name: "etc/new", Typeflag: tar.TypeReg},
		{Name: "etc/hosts", Typeflag: tar.TypeReg},
		{Name: "opq/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "opq/-early", Typeflag: tar.TypeReg},
		{Name: "opq/.wh..wh..opq", Typeflag: tar.TypeReg},
		{Name: "opq/later", Typeflag: tar.TypeReg},
		{Name: ".wh.missing", Typeflag: tar.TypeReg},
		{Name: "tokeep", Typeflag: tar.TypeSymlink, Linkname: "/keep"},
		{Name: "tokeep/sub/z", Typeflag: tar.TypeReg},
		{Name: "tokeep/x", Typeflag: tar.TypeReg},
		{Name: "tokeep/.wh.x", Typeflag: tar.TypeReg},
	}, map[string]string{"keep/x": "new", "keep/y": "y", "etc/new": "n", "etc/hosts": "from layer", "opq/-early": "e", "opq/later": "l2", "tokeep/x": "via link", "tokeep/sub/z": "z"}, ignore)
	if err != nil {
		t.Fatal(err)
	}
	if got := readString(t, f.host("/keep/x")); got != "orig" {
		t.Fatalf("ignored /keep/x overwritten: %q", got)
	}
	mustNotExist(t, f.host("/keep/y"))
	mustNotExist(t, f.host("/keep/sub"))
	mustNotExist(t, f.host("/del"))
	mustNotExist(t, f.host("/etc/old"))
	mustNotExist(t, f.host("/opq/lower"))
	if got := readString(t, f.host("/etc/hosts")); got != "host-managed" {
		t.Fatalf("ignored /etc/hosts changed: %q", got)
	}
	for p, want := range map[string]string{"/etc/new": "n", "/top": "t", "/opq/-early": "e", "/opq/later": "l2"} {
		if got := readString(t, f.host(p)); got != want {
			t.Fatalf("%s = %q, want %q", p, got, want)
		}
	}
}

func TestExtractMetadata(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	mtime := time.Unix(1_600_000_000, 123456789)
	err := extractTar(t, root, []*tar.Header{
		{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o1750, Uid: 7, Gid: 8, ModTime: mtime, Format: tar.FormatPAX},
		{Name: "d/su", Typeflag: tar.TypeReg, Mode: 0o4755, Uid: 9, Gid: 10, ModTime: mtime, Format: tar.FormatPAX},
		{Name: "d/link", Typeflag: tar.TypeLink, Linkname: "d/su"},
		{Name: "d/zero", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 5},
		{Name: "d/pipe", Typeflag: tar.TypeFifo, Mode: 0o600},
	}, map[string]string{"d/su": "suid"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Lstat(filepath.Join(root, "d/su"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode() != 0o755|os.ModeSetuid {
		t.Errorf("d/su mode %v, want setuid 0755", st.Mode())
	}
	if !st.ModTime().Equal(mtime) {
		t.Errorf("d/su mtime %v, want %v", st.ModTime(), mtime)
	}
	dir, _ := os.Lstat(filepath.Join(root, "d"))
	if dir.Mode() != os.ModeDir|os.ModeSticky|0o750 || !dir.ModTime().Equal(mtime) {
		t.Errorf("d: mode %v mtime %v; want sticky 0750 at %v (set after children)", dir.Mode(), dir.ModTime(), mtime)
	}
	if !os.SameFile(st, mustStat(t, filepath.Join(root, "d/link"))) {
		t.Error("d/link is not a hardlink of d/su")
	}
	if fi := mustStat(t, filepath.Join(root, "d/zero")); fi.Mode()&os.ModeCharDevice == 0 {
		t.Errorf("d/zero mode %v, want a char device", fi.Mode())
	}
	if fi := mustStat(t, filepath.Join(root, "d/pipe")); fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("d/pipe mode %v, want a fifo", fi.Mode())
	}
}

func mustStat(t *testing.T, p string) os.FileInfo {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

func TestClear(t *testing.T) {
	root := t.TempDir()
	f := fsOps{t: t, root: root}
	f.write("/keep/x", "x", 0o644)
	f.write("/deep/ign/y", "y", 0o644)
	f.write("/deep/other", "o", 0o644)
	f.write("/bin/sh", "sh", 0o755)
	f.must(os.Symlink("/keep", f.host("/link")))
	ignored := map[string]bool{"/keep": true, "/deep/ign": true}
	if err := Clear(root, func(p string) bool { return ignored[p] }); err != nil {
		t.Fatal(err)
	}
	var got []string
	filepath.Walk(root, func(p string, _ os.FileInfo, _ error) error {
		got = append(got, strings.TrimPrefix(p, root))
		return nil
	})
	want := []string{"", "/deep", "/deep/ign", "/deep/ign/y", "/keep", "/keep/x"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("after Clear: %v, want %v", got, want)
	}
}
