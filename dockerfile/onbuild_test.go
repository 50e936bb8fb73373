package dockerfile

import (
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

func TestOnBuildCommands(t *testing.T) {
	// Triggers as Docker stores them in the config: the expression after ONBUILD.
	d := mustParse(t, "FROM a\nONBUILD COPY . /app\nONBUILD RUN make\n")
	var triggers []string
	for _, c := range d.Stages[0].Commands {
		triggers = append(triggers, c.(*instructions.OnbuildCommand).Expression)
	}
	triggers = append(triggers, "ENV A=1 B=2", "RUN <<EOF\necho hi\nEOF")
	cmds, err := OnBuildCommands(triggers, "example.com/base:1")
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 4 {
		t.Fatalf("got %d commands", len(cmds))
	}
	if c := cmds[0].(*instructions.CopyCommand); c.SourcePaths[0] != "." || c.DestPath != "/app" {
		t.Errorf("COPY = %+v", c)
	}
	if c := cmds[1].(*instructions.RunCommand); c.CmdLine[0] != "make" {
		t.Errorf("RUN = %+v", c)
	}
	if c := cmds[2].(*instructions.EnvCommand); len(c.Env) != 2 {
		t.Errorf("ENV = %+v", c)
	}
	argv, _, err := RunArgs(cmds[3].(*instructions.RunCommand), nil)
	if err != nil || argv[2] != "echo hi\n" {
		t.Errorf("heredoc trigger argv = %q, %v", argv, err)
	}
	// Expand works on trigger commands too.
	x, err := d.Expand(cmds[1], NewScope(nil, nil, nil))
	if err != nil || x.(*instructions.RunCommand).CmdLine[0] != "make" {
		t.Errorf("Expand trigger: %v", err)
	}

	for _, bad := range []string{"ONBUILD RUN x", "FROM alpine", "MAINTAINER me", "BOGUS x", "COPY"} {
		_, err := OnBuildCommands([]string{"RUN ok", bad}, "base")
		if err == nil || !strings.HasPrefix(err.Error(), "base: ONBUILD trigger 2 ") {
			t.Errorf("%q: err = %v", bad, err)
		}
	}
}
