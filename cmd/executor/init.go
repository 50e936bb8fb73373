package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// forwardedSignals are passed on from pid 1 to the executor: what a kubelet, a container runtime
// or a user sends to a container's main process.
var forwardedSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2}

// runAsInit is main when the executor is pid 1 of its container, as in a Kaniko build pod. A
// RUN's background processes that outlive it are re-parented to pid 1 and, once killed, stay
// zombies holding their pids until pid 1 reaps them; under a pod's pids limit they would keep
// every later RUN (and the executor's own threads) from starting. So pid 1 starts the executor
// again as its child, reaps every process that ends in the container, passes signals on, and
// exits with the executor's code once it is done. It returns that code, or -1 when the child
// cannot be started (then the executor runs in this process, without a reaper).
func runAsInit(stderr io.Writer) int {
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, forwardedSignals...)
	if err := cmd.Start(); err != nil {
		signal.Stop(signals)
		fmt.Fprintf(stderr, "kiln executor: cannot start as pid 1's child (%v); orphaned processes will not be reaped\n", err)
		return -1
	}
	child := cmd.Process.Pid
	go func() {
		for s := range signals {
			_ = syscall.Kill(child, s.(syscall.Signal))
		}
	}()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			// ECHILD: the executor is gone without us seeing it (cannot happen); report failure.
			fmt.Fprintf(stderr, "kiln executor: waiting for the build: %v\n", err)
			return 1
		}
		if pid != child {
			continue // an orphan, reaped
		}
		switch {
		case ws.Exited():
			return ws.ExitStatus()
		case ws.Signaled():
			return 128 + int(ws.Signal())
		}
	}
}
