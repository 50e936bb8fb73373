package builder

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// RunError reports a RUN whose command exited with a non-zero code. The executor exits with
// the same code, as Kaniko does, so CI systems see the failing command's status.
type RunError struct {
	Code int
}

// Error is Kaniko's message, with the signal named when the code says the command was killed
// by one (128+N), and for SIGKILL the likely cause.
func (e *RunError) Error() string {
	msg := fmt.Sprintf("the command returned a non-zero code: %d", e.Code)
	if e.Code <= 128 || e.Code >= 128+65 {
		return msg
	}
	sig := syscall.Signal(e.Code - 128)
	name := unix.SignalName(sig)
	if name == "" {
		return msg
	}
	switch sig {
	case syscall.SIGKILL:
		return msg + " (killed by " + name + ": out of memory, the container's memory limit reached, or killed from outside the build)"
	case syscall.SIGSEGV, syscall.SIGBUS, syscall.SIGILL, syscall.SIGABRT:
		return msg + " (killed by " + name + ": the command crashed)"
	}
	return msg + " (killed by " + name + ")"
}
