package runner

import (
	"os"
	"os/exec"
	"path"
	"strings"
)

// lookPath finds name in the PATH of env, the way a shell would, in the
// filesystem this process currently sees (the image root once the runner
// has entered it). Names containing a slash are returned unchanged. The
// error matches Docker's: exec: "foo": executable file not found in $PATH.
func lookPath(name string, env []string) (string, error) {
	return lookPathWith(name, env, isExecutable)
}

// lookPathWith finds name in env's PATH, taking the first absolute entry's candidate for which
// runnable is true.
func lookPathWith(name string, env []string, runnable func(candidate string) bool) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	pathList, ok := envValue(env, "PATH")
	if !ok {
		pathList = defaultPath
	}
	for _, dir := range strings.Split(pathList, ":") {
		// Relative entries (including "") would depend on the working
		// directory; like Go's exec.LookPath we refuse to use them.
		if !path.IsAbs(dir) {
			continue
		}
		if candidate := path.Join(dir, name); runnable(candidate) {
			return candidate, nil
		}
	}
	return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
}

// isExecutable reports whether p is a regular file with an execute bit.
func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// envValue returns the last value of key in env, as execve's consumers do.
func envValue(env []string, key string) (string, bool) {
	val, found := "", false
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			val, found = v, true
		}
	}
	return val, found
}
