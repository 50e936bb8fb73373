// Command chrootrun runs one command in a directory-mode root through the runner, the way a
// program that embeds the builder does. TestDirInsideChroot runs it chrooted into a directory
// that is not a mount point.
//
//	chrootrun ROOT COMMAND [ARG...]
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/kilnbuild/kiln/internal/runner"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: chrootrun ROOT COMMAND [ARG...]")
		os.Exit(2)
	}
	if err := runner.Supported(); err != nil {
		fmt.Fprintln(os.Stderr, "chrootrun: Supported:", err)
		os.Exit(3)
	}
	err := runner.Run(context.Background(), runner.Spec{
		Root:   os.Args[1],
		Args:   os.Args[2:],
		Env:    []string{"PATH=/bin"},
		Stdout: os.Stdout,
		Stderr: os.Stderr,
	})
	var exit *runner.ExitError
	switch {
	case errors.As(err, &exit):
		os.Exit(exit.Code)
	case err != nil:
		fmt.Fprintln(os.Stderr, "chrootrun:", err)
		os.Exit(4)
	}
}
