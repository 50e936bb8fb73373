package builder

import "fmt"

// RunError reports a RUN whose command exited with a non-zero code. The executor exits with
// the same code, as Kaniko does, so CI systems see the failing command's status.
type RunError struct {
	Code int
}

func (e *RunError) Error() string {
	return fmt.Sprintf("the command returned a non-zero code: %d", e.Code)
}
