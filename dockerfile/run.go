package dockerfile

import (
	"errors"
	"path"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// DefaultShell is the shell RUN uses until a SHELL instruction changes it.
func DefaultShell() []string { return []string{"/bin/sh", "-c"} }

// Script is a heredoc body with a "#!" line that a RUN executes directly:
// the builder writes Data at Path (mode 0755) for the duration of the RUN.
type Script struct {
	Path string
	Data []byte
}

// scriptDir is where BuildKit mounts heredoc scripts.
const scriptDir = "/dev/pipes"

// RunArgs turns a RUN into the argv to execute, given the current SHELL
// (nil = DefaultShell):
//   - shell form: shell + [command line];
//   - exec form: the JSON array as is;
//   - a lone heredoc (RUN <<EOF): its body, tab-stripped for <<-, run with the
//     shell; a body starting with "#!" is instead returned as a Script and
//     argv is [Script.Path], so its interpreter runs it;
//   - any other heredoc use (RUN cat <<EOF > /f): the command line, then each
//     heredoc's body and terminator, passed whole to the shell, which handles them.
func RunArgs(run *instructions.RunCommand, shell []string) ([]string, *Script, error) {
	if len(shell) == 0 {
		shell = DefaultShell()
	}
	args := run.CmdLine
	if !run.PrependShell {
		if len(run.Files) > 0 {
			return nil, nil, errors.New("RUN: heredocs need the shell form")
		}
		if len(args) == 0 {
			return nil, nil, errors.New("RUN: empty exec form")
		}
		return append([]string(nil), args...), nil, nil
	}
	if len(args) != 1 {
		return nil, nil, errors.New("RUN: shell form must be a single command line")
	}
	if len(run.Files) == 0 {
		return withShell(shell, args[0]), nil, nil
	}
	if hd := parser.MustParseHeredoc(args[0]); hd != nil {
		// The whole command line is one heredoc word.
		f := run.Files[0]
		data := f.Data
		if f.Chomp {
			data = parser.ChompHeredocContent(data)
		}
		if strings.HasPrefix(data, "#!") {
			s := &Script{Path: path.Join(scriptDir, f.Name), Data: []byte(data)}
			return []string{s.Path}, s, nil
		}
		return withShell(shell, data), nil, nil
	}
	var b strings.Builder
	b.WriteString(args[0])
	for _, f := range run.Files {
		b.WriteByte('\n')
		b.WriteString(f.Data)
		b.WriteString(f.Name)
	}
	return withShell(shell, b.String()), nil, nil
}

func withShell(shell []string, cmdline string) []string {
	return append(append([]string(nil), shell...), cmdline)
}
