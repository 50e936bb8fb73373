// Command agentls prints the comment of every key the ssh agent at $SSH_AUTH_SOCK holds, one a
// line. It speaks the agent protocol itself (a request for the identities), so a test image
// needs no ssh-add.
package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
)

const (
	requestIdentities = 11
	identitiesAnswer  = 12
)

func main() {
	if err := list(os.Getenv("SSH_AUTH_SOCK")); err != nil {
		fmt.Fprintln(os.Stderr, "agentls:", err)
		os.Exit(1)
	}
}

func list(sock string) error {
	c, err := net.Dial("unix", sock)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte{0, 0, 0, 1, requestIdentities}); err != nil {
		return err
	}
	var n uint32
	if err := binary.Read(c, binary.BigEndian, &n); err != nil {
		return err
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(c, msg); err != nil {
		return err
	}
	if len(msg) < 5 || msg[0] != identitiesAnswer {
		return fmt.Errorf("unexpected answer %v", msg)
	}
	count, rest := binary.BigEndian.Uint32(msg[1:5]), msg[5:]
	for i := uint32(0); i < count; i++ {
		var comment []byte
		if _, rest, err = field(rest); err != nil {
			return err
		}
		if comment, rest, err = field(rest); err != nil {
			return err
		}
		fmt.Println(string(comment))
	}
	return nil
}

// field splits a length-prefixed string off b.
func field(b []byte) ([]byte, []byte, error) {
	if len(b) < 4 {
		return nil, nil, fmt.Errorf("short answer")
	}
	n := binary.BigEndian.Uint32(b)
	if uint32(len(b)-4) < n {
		return nil, nil, fmt.Errorf("short answer")
	}
	return b[4 : 4+n], b[4+n:], nil
}
