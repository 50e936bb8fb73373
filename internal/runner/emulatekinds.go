package runner

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"github.com/kilnbuild/kiln/internal/copier"
	"golang.org/x/sys/unix"
)

// mount puts one Mount's source at its target (see emulation).
func (e *emulation) mount(m Mount) error {
	src, _, err := mountSource(m)
	if err != nil {
		return err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	host, err := e.slot(cleanImagePath(m.Target))
	if err != nil {
		return err
	}
	switch {
	case fi.Mode()&os.ModeSocket != 0:
		return e.relaySocket(src, fi, host)
	case m.ReadOnly || m.Discard:
		return e.copyIn(src, host)
	}
	return e.moveIn(src, fi.Mode().Type(), host)
}

// moveIn renames src to host, and back after the run; across file systems
// (or for a source already moved to another target) host becomes a symlink
// to it instead.
func (e *emulation) moveIn(src string, kind os.FileMode, host string) error {
	to, twice := e.moved[src]
	if !twice {
		err := os.Rename(src, host)
		if err == nil {
			e.moved[src] = host
			e.sc.onUndo(func() error { return moveBack(host, src, kind) })
			return nil
		}
		if !errors.Is(err, unix.EXDEV) {
			return err
		}
		to = src
	}
	e.sc.onUndo(func() error { return removeTree(host) })
	return os.Symlink(to, host)
}

// moveBack renames what the run left at host back to src, the source's
// place: what the run wrote is the source's new content. A run that removed
// the target leaves the source missing (a cache is made anew on its next
// use); anything of another kind than the source is removed.
func moveBack(host, src string, kind os.FileMode) error {
	fi, err := os.Lstat(host)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("clean up %s: %w", host, err)
	}
	if fi.Mode().Type() != kind {
		return removeTree(host)
	}
	if err := os.Rename(host, src); err != nil {
		return fmt.Errorf("move %s back to %s: %w", host, src, err)
	}
	return nil
}

// copyIn copies src to host (a directory with its mode, owner and times),
// removed after the run.
func (e *emulation) copyIn(src, host string) error {
	e.sc.onUndo(func() error { return removeTree(host) })
	rel, err := filepath.Rel(e.sc.root, host)
	if err != nil {
		return err
	}
	_, err = copier.Copy(e.ctx, copier.Request{SrcRoot: filepath.Dir(src), Sources: []string{filepath.Base(src)},
		Root: e.sc.root, Dest: "/" + rel, WorkDir: "/", UID: -1, GID: -1})
	return err
}

// tmpfs makes an empty directory at the target, as a fresh tmpfs is: mode
// 1777, owned by root. Its size is not limited.
func (e *emulation) tmpfs(t Tmpfs) error {
	host, err := e.slot(cleanImagePath(t.Target))
	if err != nil {
		return err
	}
	e.sc.onUndo(func() error { return removeTree(host) })
	if err := os.Mkdir(host, 0o700); err != nil {
		return err
	}
	return os.Chmod(host, os.ModePerm|os.ModeSticky)
}

// file writes a secret File at its path with its mode and owner, removed
// after the run. Its content is never logged.
func (e *emulation) file(f File) error {
	img := cleanImagePath(f.Path)
	host, err := e.slot(img)
	if err != nil {
		return err
	}
	e.sc.onUndo(func() error { return removeTree(host) })
	if err := writeFileMode(host, f.Data, f.Mode.Perm()); err != nil {
		return fmt.Errorf("provide %s: %w", img, err)
	}
	if err := os.Lchown(host, int(f.UID), int(f.GID)); err != nil {
		return fmt.Errorf("provide %s: %w", img, err)
	}
	return nil
}

// relaySocket listens at host, with the mode and owner of the socket src,
// and relays every connection to src until the run ends.
func (e *emulation) relaySocket(src string, fi os.FileInfo, host string) error {
	l, err := net.Listen("unix", host)
	if err != nil {
		return err
	}
	e.sc.onUndo(func() error {
		l.Close()
		return removeTree(host)
	})
	st := fi.Sys().(*syscall.Stat_t)
	if err := os.Chmod(host, fi.Mode().Perm()); err != nil {
		return err
	}
	if err := os.Lchown(host, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	go acceptRelay(l, src)
	return nil
}

// acceptRelay relays every connection to l to the socket src until l is
// closed.
func acceptRelay(l net.Listener, src string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go relayConn(c, src)
	}
}

// relayConn copies one connection to and from the socket src.
func relayConn(c net.Conn, src string) {
	defer c.Close()
	up, err := net.Dial("unix", src)
	if err != nil {
		return // the client sees its connection close, as with a dead agent
	}
	defer up.Close()
	go func() {
		_, _ = io.Copy(up, c)
		_ = up.(*net.UnixConn).CloseWrite()
	}()
	_, _ = io.Copy(c, up)
}
