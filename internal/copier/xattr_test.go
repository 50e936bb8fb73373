package copier

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// capNetBindService is a v2 security.capability value granting
// CAP_NET_BIND_SERVICE (bit 10), effective.
func capNetBindService() []byte {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000001) // revision 2, effective
	binary.LittleEndian.PutUint32(b[4:], 1<<10)      // permitted, low word
	return b
}

// security.capability must survive the copy, although chown (done to set
// the owner) clears it: xattrs are set after chown.
func TestCopyKeepsCapabilities(t *testing.T) {
	requireRoot(t)
	src, root := t.TempDir(), t.TempDir()
	f := filepath.Join(src, "ping")
	must(t, os.WriteFile(f, []byte("bin"), 0o755))
	want := capNetBindService()
	if err := unix.Setxattr(f, "security.capability", want, 0); err != nil {
		t.Skipf("the temp filesystem cannot hold security.capability: %v", err)
	}
	if _, err := Copy(context.Background(), Request{SrcRoot: src, Root: root, Sources: []string{"ping"}, Dest: "/bin/", UID: 5, GID: 5}); err != nil {
		t.Fatal(err)
	}
	got, err := getXattr(filepath.Join(root, "bin/ping"), "security.capability")
	if err != nil {
		t.Fatalf("security.capability lost: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("security.capability = %x, want %x", got, want)
	}
}
