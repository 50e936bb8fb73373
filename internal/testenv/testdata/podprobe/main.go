// Command podprobe reports what a process sees inside a RunPod sandbox, as
// JSON on stdout, so testenv's tests can assert on the sandbox.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

type report struct {
	PID        int               `json:"pid"`
	Cwd        string            `json:"cwd"`
	Args       []string          `json:"args"`
	Env        []string          `json:"env"`
	Root       []string          `json:"root"`
	ProcPIDs   []int             `json:"proc_pids"`
	Files      map[string]string `json:"files"`
	MountPoint []string          `json:"mount_points"`
	Stdin      string            `json:"stdin"`
	Errors     []string          `json:"errors"`
}

func main() {
	r := report{PID: os.Getpid(), Args: os.Args[1:], Env: os.Environ(), Files: map[string]string{}}
	r.Cwd, _ = os.Getwd()
	if ents, err := os.ReadDir("/"); err == nil {
		for _, e := range ents {
			r.Root = append(r.Root, e.Name())
		}
	} else {
		r.Errors = append(r.Errors, err.Error())
	}
	if ents, err := os.ReadDir("/proc"); err == nil {
		for _, e := range ents {
			if n, err := strconv.Atoi(e.Name()); err == nil {
				r.ProcPIDs = append(r.ProcPIDs, n)
			}
		}
	}
	exit := 0
	for _, a := range os.Args[1:] {
		switch {
		case strings.HasPrefix(a, "read="):
			p := strings.TrimPrefix(a, "read=")
			b, err := os.ReadFile(p)
			if err != nil {
				r.Files[p] = "ERROR: " + err.Error()
			} else {
				r.Files[p] = string(b)
			}
		case strings.HasPrefix(a, "write="):
			p := strings.TrimPrefix(a, "write=")
			if err := os.WriteFile(p, []byte("written by podprobe\n"), 0o644); err != nil {
				r.Errors = append(r.Errors, err.Error())
			}
		case strings.HasPrefix(a, "exit="):
			exit, _ = strconv.Atoi(strings.TrimPrefix(a, "exit="))
		case strings.HasPrefix(a, "sleep="):
			d, _ := time.ParseDuration(strings.TrimPrefix(a, "sleep="))
			time.Sleep(d)
		case a == "stdin":
			b, _ := io.ReadAll(os.Stdin)
			r.Stdin = string(b)
		}
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 4 {
				r.MountPoint = append(r.MountPoint, f[4])
			}
		}
	}
	json.NewEncoder(os.Stdout).Encode(r)
	fmt.Fprintln(os.Stderr, "podprobe done")
	os.Exit(exit)
}
