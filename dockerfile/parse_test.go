package dockerfile

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

func mustParse(t *testing.T, text string) *Dockerfile {
	t.Helper()
	d, err := Parse(Source{Name: "Dockerfile", Data: []byte(text)})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return d
}

// only returns the single command of a one-stage Dockerfile "FROM x\n<line>".
func only(t *testing.T, line string) instructions.Command {
	t.Helper()
	d := mustParse(t, "FROM busybox\n"+line+"\n")
	if len(d.Stages) != 1 || len(d.Stages[0].Commands) != 1 {
		t.Fatalf("want 1 stage with 1 command, got %+v", d.Stages)
	}
	return d.Stages[0].Commands[0]
}

func TestParseFrom(t *testing.T) {
	d := mustParse(t, `ARG BASE=alpine
ARG TAG
FROM --platform=$BUILDPLATFORM ${BASE}:3.20 AS Builder
RUN true
FROM scratch
COPY --from=builder /a /a
`)
	if len(d.MetaArgs) != 2 || d.MetaArgs[0].Args[0].Key != "BASE" || *d.MetaArgs[0].Args[0].Value != "alpine" || d.MetaArgs[1].Args[0].Value != nil {
		t.Fatalf("meta args: %+v", d.MetaArgs)
	}
	want := []Stage{
		{Index: 0, Name: "builder", BaseName: "${BASE}:3.20", Platform: "$BUILDPLATFORM", Line: 3},
		{Index: 1, BaseName: "scratch", Line: 5},
	}
	for i, w := range want {
		got := d.Stages[i]
		got.Commands = nil
		if !reflect.DeepEqual(got, w) {
			t.Errorf("stage %d = %+v, want %+v", i, got, w)
		}
	}
	if d.Escape != '\\' {
		t.Errorf("escape = %q", d.Escape)
	}
}

func TestParseEveryInstruction(t *testing.T) {
	str := func(s string) *string { return &s }
	tests := []struct {
		line  string
		check func(t *testing.T, c instructions.Command)
	}{
		{`RUN echo hi && ls`, func(t *testing.T, c instructions.Command) {
			r := c.(*instructions.RunCommand)
			if !r.PrependShell || !reflect.DeepEqual(r.CmdLine, []string{"echo hi && ls"}) {
				t.Errorf("%+v", r.ShellDependantCmdLine)
			}
		}},
		{`RUN ["echo", "hi"]`, func(t *testing.T, c instructions.Command) {
			r := c.(*instructions.RunCommand)
			if r.PrependShell || !reflect.DeepEqual(r.CmdLine, []string{"echo", "hi"}) {
				t.Errorf("%+v", r.ShellDependantCmdLine)
			}
		}},
		{"RUN <<EOF\n#!/bin/sh\necho hi\nEOF", func(t *testing.T, c instructions.Command) {
			r := c.(*instructions.RunCommand)
			if len(r.Files) != 1 || r.Files[0].Name != "EOF" || r.Files[0].Data != "#!/bin/sh\necho hi\n" {
				t.Errorf("%+v", r.Files)
			}
		}},
		{"RUN cat <<EOF > /f\nbody\nEOF", func(t *testing.T, c instructions.Command) {
			r := c.(*instructions.RunCommand)
			if len(r.Files) != 1 || r.CmdLine[0] != "cat <<EOF > /f" || r.Files[0].Data != "body\n" {
				t.Errorf("%+v", r.ShellDependantCmdLine)
			}
		}},
		{`RUN --mount=type=cache,target=/root/.cache go build`, func(t *testing.T, c instructions.Command) {
			r := c.(*instructions.RunCommand)
			if len(instructions.GetMounts(r)) != 1 {
				t.Errorf("mounts %+v", instructions.GetMounts(r))
			}
		}},
		{`CMD ["/app", "-v"]`, func(t *testing.T, c instructions.Command) {
			if got := c.(*instructions.CmdCommand).CmdLine; !reflect.DeepEqual(got, []string{"/app", "-v"}) {
				t.Errorf("%q", got)
			}
		}},
		{`CMD echo $HOME`, func(t *testing.T, c instructions.Command) {
			cc := c.(*instructions.CmdCommand)
			if !cc.PrependShell || cc.CmdLine[0] != "echo $HOME" {
				t.Errorf("%+v", cc)
			}
		}},
		{`ENTRYPOINT ["/bin/app"]`, func(t *testing.T, c instructions.Command) {
			if got := c.(*instructions.EntrypointCommand).CmdLine; !reflect.DeepEqual(got, []string{"/bin/app"}) {
				t.Errorf("%q", got)
			}
		}},
		{`LABEL a=b "c d"="e f"`, func(t *testing.T, c instructions.Command) {
			// Quotes stay until expansion, as for ENV.
			want := instructions.KeyValuePairs{{Key: "a", Value: "b"}, {Key: `"c d"`, Value: `"e f"`}}
			if got := c.(*instructions.LabelCommand).Labels; !reflect.DeepEqual(got, want) {
				t.Errorf("%+v", got)
			}
		}},
		{`MAINTAINER Jane <jane@example.com>`, func(t *testing.T, c instructions.Command) {
			if got := c.(*instructions.MaintainerCommand).Maintainer; got != "Jane <jane@example.com>" {
				t.Errorf("%q", got)
			}
		}},
		{`EXPOSE 80 443/tcp 53/udp`, func(t *testing.T, c instructions.Command) {
			if got := c.(*instructions.ExposeCommand).Ports; !reflect.DeepEqual(got, []string{"443/tcp", "53/udp", "80"}) { // BuildKit sorts
				t.Errorf("%q", got)
			}
		}},
		{`ENV PATH /usr/local/bin:/usr/bin`, func(t *testing.T, c instructions.Command) {
			got := c.(*instructions.EnvCommand).Env
			if len(got) != 1 || got[0].Key != "PATH" || got[0].Value != "/usr/local/bin:/usr/bin" {
				t.Errorf("%+v", got)
			}
		}},
		{`ENV K=V K2="a b"`, func(t *testing.T, c instructions.Command) {
			got := c.(*instructions.EnvCommand).Env
			if len(got) != 2 || got[0].Key != "K" || got[0].Value != "V" || got[1].Key != "K2" || got[1].Value != `"a b"` {
				t.Errorf("%+v", got)
			}
		}},
		{`ARG A B=2 C=`, func(t *testing.T, c instructions.Command) {
			got := c.(*instructions.ArgCommand).Args
			want := []instructions.KeyValuePairOptional{{Key: "A"}, {Key: "B", Value: str("2")}, {Key: "C", Value: str("")}}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%+v", got)
			}
		}},
		{`ADD --chown=1000:1000 --chmod=0644 --link --checksum=sha256:0123 https://example.com/a.tgz /opt/`, func(t *testing.T, c instructions.Command) {
			a := c.(*instructions.AddCommand)
			if a.Chown != "1000:1000" || a.Chmod != "0644" || !a.Link || a.Checksum != "sha256:0123" ||
				!reflect.DeepEqual(a.SourcePaths, []string{"https://example.com/a.tgz"}) || a.DestPath != "/opt/" {
				t.Errorf("%+v", a)
			}
		}},
		{`COPY --from=builder --chown=app:app --chmod=755 --link a b /dst/`, func(t *testing.T, c instructions.Command) {
			cp := c.(*instructions.CopyCommand)
			if cp.From != "builder" || cp.Chown != "app:app" || cp.Chmod != "755" || !cp.Link ||
				!reflect.DeepEqual(cp.SourcePaths, []string{"a", "b"}) || cp.DestPath != "/dst/" {
				t.Errorf("%+v", cp)
			}
		}},
		{`COPY ["a b", "/c d/"]`, func(t *testing.T, c instructions.Command) {
			cp := c.(*instructions.CopyCommand)
			if !reflect.DeepEqual(cp.SourcePaths, []string{"a b"}) || cp.DestPath != "/c d/" {
				t.Errorf("%+v", cp)
			}
		}},
		{`VOLUME ["/data", "/logs"]`, func(t *testing.T, c instructions.Command) {
			if got := c.(*instructions.VolumeCommand).Volumes; !reflect.DeepEqual(got, []string{"/data", "/logs"}) {
				t.Errorf("%q", got)
			}
		}},
		{`VOLUME /data /logs`, func(t *testing.T, c instructions.Command) {
			if got := c.(*instructions.VolumeCommand).Volumes; !reflect.DeepEqual(got, []string{"/data", "/logs"}) {
				t.Errorf("%q", got)
			}
		}},
		{`USER app:staff`, func(t *testing.T, c instructions.Command) {
			if got := c.(*instructions.UserCommand).User; got != "app:staff" {
				t.Errorf("%q", got)
			}
		}},
		{`WORKDIR /srv/app`, func(t *testing.T, c instructions.Command) {
			if got := c.(*instructions.WorkdirCommand).Path; got != "/srv/app" {
				t.Errorf("%q", got)
			}
		}},
		{`ONBUILD RUN make`, func(t *testing.T, c instructions.Command) {
			if got := c.(*instructions.OnbuildCommand).Expression; got != "RUN make" {
				t.Errorf("%q", got)
			}
		}},
		{`STOPSIGNAL SIGTERM`, func(t *testing.T, c instructions.Command) {
			if got := c.(*instructions.StopSignalCommand).Signal; got != "SIGTERM" {
				t.Errorf("%q", got)
			}
		}},
		{`HEALTHCHECK --interval=5s --timeout=3s --start-period=1s --retries=4 CMD curl -f http://localhost/`, func(t *testing.T, c instructions.Command) {
			h := c.(*instructions.HealthCheckCommand).Health
			if h.Interval.String() != "5s" || h.Timeout.String() != "3s" || h.StartPeriod.String() != "1s" || h.Retries != 4 ||
				!reflect.DeepEqual(h.Test, []string{"CMD-SHELL", "curl -f http://localhost/"}) {
				t.Errorf("%+v", h)
			}
		}},
		{`HEALTHCHECK NONE`, func(t *testing.T, c instructions.Command) {
			if got := c.(*instructions.HealthCheckCommand).Health.Test; !reflect.DeepEqual(got, []string{"NONE"}) {
				t.Errorf("%q", got)
			}
		}},
		{`SHELL ["/bin/bash", "-eo", "pipefail", "-c"]`, func(t *testing.T, c instructions.Command) {
			if got := c.(*instructions.ShellCommand).Shell; !reflect.DeepEqual(got, []string{"/bin/bash", "-eo", "pipefail", "-c"}) {
				t.Errorf("%q", got)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(strings.SplitN(tt.line, " ", 2)[0], func(t *testing.T) {
			c := only(t, tt.line)
			if lineOf(c) != 2 {
				t.Errorf("line = %d, want 2", lineOf(c))
			}
			tt.check(t, c)
		})
	}
}

func TestParseEscapeDirective(t *testing.T) {
	d := mustParse(t, "# escape=`\nFROM mcr.microsoft.com/windows\nRUN dir `\n  c:\\\nCOPY a\\b c:\\dest\\\n")
	if d.Escape != '`' {
		t.Fatalf("escape = %q", d.Escape)
	}
	run := d.Stages[0].Commands[0].(*instructions.RunCommand)
	if run.CmdLine[0] != `dir   c:\` {
		t.Errorf("continuation with backtick: %q", run.CmdLine[0])
	}
	cp := d.Stages[0].Commands[1].(*instructions.CopyCommand)
	if cp.SourcePaths[0] != `a\b` || cp.DestPath != `c:\dest\` {
		t.Errorf("backslashes must stay literal: %+v", cp.SourcesAndDest)
	}
	// Expansion uses the backtick too: `$ is a literal dollar.
	got, err := d.Expand(cp, NewScope(nil, nil, nil))
	if err != nil || got.(*instructions.CopyCommand).DestPath != `c:\dest\` {
		t.Errorf("expand: %v %+v", err, got)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"unknown instruction", "FROM a\nRUN x\nFOO bar\n", "Dockerfile:3: unknown instruction: FOO"},
		{"bad flag", "FROM a\nCOPY --bogus=1 a b\n", "Dockerfile:2: "},
		{"missing args", "FROM a\n\nWORKDIR\n", "Dockerfile:3: "},
		{"unterminated heredoc", "FROM a\nRUN <<EOF\necho\n", "Dockerfile:2: unterminated heredoc"},
		{"before FROM", "ARG X\nRUN echo\nFROM a\n", "Dockerfile:2: RUN before the first FROM"},
		{"no FROM", "ARG X\n", "Dockerfile: no FROM instruction"},
		{"empty", "# nothing\n", "Dockerfile"},
		{"duplicate stage", "FROM a AS x\nFROM b AS X\n", "Dockerfile:2: duplicate stage name \"x\" (first defined on line 1)"},
		{"bad stage name", "FROM a AS 1x\n", "Dockerfile:1: invalid name for build stage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(Source{Name: "Dockerfile", Data: []byte(tt.text)})
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("err = %v, want prefix %q", err, tt.want)
			}
		})
	}
}

func TestFromFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "Dockerfile")
	if err := os.WriteFile(p, []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := FromFile(p)
	if err != nil || src.Name != p || string(src.Data) != "FROM scratch\n" {
		t.Fatalf("FromFile = %+v, %v", src, err)
	}
	missing := filepath.Join(dir, "nope")
	_, err = FromFile(missing)
	if err == nil || !strings.Contains(err.Error(), "dockerfile: open "+missing) {
		t.Fatalf("err = %v", err)
	}
}
