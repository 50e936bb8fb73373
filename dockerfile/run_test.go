package dockerfile

import (
	"reflect"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

func TestRunArgs(t *testing.T) {
	bash := []string{"/bin/bash", "-eo", "pipefail", "-c"}
	tests := []struct {
		name       string
		line       string
		shell      []string
		want       []string
		wantScript *Script
	}{
		{"shell form", "RUN echo $HOME && ls", nil, []string{"/bin/sh", "-c", "echo $HOME && ls"}, nil},
		{"custom shell", "RUN echo hi", bash, []string{"/bin/bash", "-eo", "pipefail", "-c", "echo hi"}, nil},
		{"exec form", `RUN ["/bin/echo", "a b", "$X"]`, bash, []string{"/bin/echo", "a b", "$X"}, nil},
		{"lone heredoc", "RUN <<EOF\necho one\necho two\nEOF", nil, []string{"/bin/sh", "-c", "echo one\necho two\n"}, nil},
		{"lone heredoc chomp", "RUN <<-EOF\n\techo one\n\t\techo two\n\tEOF", nil, []string{"/bin/sh", "-c", "echo one\necho two\n"}, nil},
		{"shebang heredoc", "RUN <<EOT\n#!/usr/bin/env python3\nprint('hi')\nEOT", nil, []string{"/dev/pipes/EOT"},
			&Script{Path: "/dev/pipes/EOT", Data: []byte("#!/usr/bin/env python3\nprint('hi')\n")}},
		{"shebang heredoc chomp", "RUN <<-EOT\n\t#!/bin/sh\n\techo hi\n\tEOT", nil, []string{"/dev/pipes/EOT"},
			&Script{Path: "/dev/pipes/EOT", Data: []byte("#!/bin/sh\necho hi\n")}},
		{"heredoc in command", "RUN cat <<EOF > /f\nline $X\nEOF", nil, []string{"/bin/sh", "-c", "cat <<EOF > /f\nline $X\nEOF"}, nil},
		{"chomp heredoc in command is left to the shell", "RUN cat <<-EOF > /f\n\tx\n\tEOF", nil, []string{"/bin/sh", "-c", "cat <<-EOF > /f\n\tx\nEOF"}, nil},
		{"two heredocs", "RUN cat <<A - <<B > /f\na\nA\nb\nB", nil, []string{"/bin/sh", "-c", "cat <<A - <<B > /f\na\nA\nb\nB"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := only(t, tt.line).(*instructions.RunCommand)
			argv, script, err := RunArgs(run, tt.shell)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(argv, tt.want) {
				t.Errorf("argv = %q, want %q", argv, tt.want)
			}
			if !reflect.DeepEqual(script, tt.wantScript) {
				t.Errorf("script = %+v, want %+v", script, tt.wantScript)
			}
		})
	}
}

func TestRunArgsDoesNotAliasShell(t *testing.T) {
	shell := make([]string, 2, 8)
	copy(shell, []string{"/bin/sh", "-c"})
	a, _, _ := RunArgs(only(t, "RUN one").(*instructions.RunCommand), shell)
	b, _, _ := RunArgs(only(t, "RUN two").(*instructions.RunCommand), shell)
	if a[2] != "one" || b[2] != "two" {
		t.Errorf("argv share storage with the shell slice: %q %q", a, b)
	}
}

func TestRunArgsErrors(t *testing.T) {
	empty := only(t, "RUN []").(*instructions.RunCommand)
	if _, _, err := RunArgs(empty, nil); err == nil {
		t.Error("empty exec form accepted")
	}
}
