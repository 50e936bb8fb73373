package builder

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/kilnbuild/kiln/internal/runner"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// SSHAgent is what RUN --mount=type=ssh,id=ID reaches: an ssh-agent socket, or private key
// files that the build serves with an agent of its own (as BuildKit's --ssh ID=PATH,...).
// The RUN sees a socket at the mount's target (/run/buildkit/ssh_agent.N by default) with
// SSH_AUTH_SOCK naming the first one; no key ever enters the image.
type SSHAgent struct {
	// ID is the name RUN --mount=type=ssh,id= uses ("default" when the mount names none).
	ID string
	// Paths is one agent socket, or one or more unencrypted private key files.
	Paths []string
}

// WithSSH makes ssh agents available to RUN --mount=type=ssh. A later agent with the same ID
// replaces an earlier one.
func WithSSH(agents ...SSHAgent) Option {
	return func(o *options) {
		if o.ssh == nil {
			o.ssh = map[string]SSHAgent{}
		}
		for _, a := range agents {
			o.ssh[a.ID] = a
		}
	}
}

// addSSH forwards the agent m.ID to a socket the RUN sees at m.Target, owned and moded as the
// mount says. An agent that was not given is an error when the mount says required, and
// otherwise left out with a warning.
func (b *build) addSSH(rs *runSetup, m dockerfile.Mount) error {
	a, ok := b.o.ssh[m.ID]
	if !ok {
		if m.Required {
			return fmt.Errorf("ssh agent id=%s is required but was not given (--ssh %s=SOCKET, or --ssh default for $SSH_AUTH_SOCK)", m.ID, m.ID)
		}
		b.warn("ssh agent id=%s was not given: the RUN runs without it (add required=true to make that an error)", m.ID)
		return nil
	}
	serve, err := a.server()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(filepath.Join(b.workDir, "tmp"), "ssh-")
	if err != nil {
		return err
	}
	sock := filepath.Join(dir, "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("ssh agent id=%s: %w", m.ID, err)
	}
	rs.releases = append(rs.releases, func() { l.Close(); os.RemoveAll(dir) })
	if err := os.Chmod(sock, m.Mode); err != nil {
		return err
	}
	if err := os.Lchown(sock, int(m.UID), int(m.GID)); err != nil {
		return err
	}
	go acceptAgent(l, serve)
	rs.mounts = append(rs.mounts, runner.Mount{Source: sock, Target: m.Target})
	return nil
}

// acceptAgent serves every connection to l until l is closed.
func acceptAgent(l net.Listener, serve func(net.Conn)) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			serve(c)
		}()
	}
}

// server returns what answers one connection to the RUN's socket: a relay to the agent socket,
// or an in-memory agent holding the key files.
func (a SSHAgent) server() (func(net.Conn), error) {
	if len(a.Paths) == 0 {
		return nil, fmt.Errorf("ssh agent id=%s: no socket or key given", a.ID)
	}
	if fi, err := os.Stat(a.Paths[0]); err == nil && fi.Mode()&os.ModeSocket != 0 && len(a.Paths) == 1 {
		sock := a.Paths[0]
		return func(c net.Conn) { relay(c, sock) }, nil
	}
	keyring := agent.NewKeyring()
	for _, p := range a.Paths {
		if err := addKey(keyring, p); err != nil {
			return nil, fmt.Errorf("ssh agent id=%s: %w", a.ID, err)
		}
	}
	return func(c net.Conn) { _ = agent.ServeAgent(keyring, c) }, nil
}

// addKey adds the private key in file p to keyring.
func addKey(keyring agent.Agent, p string) error {
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	key, err := ssh.ParseRawPrivateKey(data)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return fmt.Errorf("%s is protected by a passphrase: add it to an ssh-agent and give its socket instead", p)
	}
	if err != nil {
		return fmt.Errorf("%s is neither an agent socket nor a private key: %w", p, err)
	}
	return keyring.Add(agent.AddedKey{PrivateKey: key, Comment: filepath.Base(p)})
}

// relay copies one connection to and from the agent socket sock.
func relay(c net.Conn, sock string) {
	up, err := net.Dial("unix", sock)
	if err != nil {
		return // the client sees its connection close, as with a dead agent
	}
	defer up.Close()
	go func() {
		_, _ = io.Copy(up, c)
		_ = up.(*net.UnixConn).CloseWrite()
	}()
	_, _ = io.Copy(c, up) // then both close, which ends the other copy too
}
