package dockerfile

import (
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

func TestExpand(t *testing.T) {
	d := mustParse(t, `FROM busybox
COPY --chown=${UID}:${GID} --chmod=$MODE $SRC/a "${SRC}/b" /opt/$NAME/
ADD --chown=$UID --checksum=$SUM $URL /dl/
ENV HOME=/home/$NAME PATH=$HOME/bin:$PATH
LABEL "org.$NAME"="v${VER}" plain=$NAME
WORKDIR /srv/${NAME:-default}
USER ${UID}:$GID
EXPOSE $PORT ${PORTS}
VOLUME $DATA /x
STOPSIGNAL $SIG
RUN echo $NAME
CMD echo $NAME
ENTRYPOINT ["$NAME"]
COPY <<EOF /f-$NAME
hello $NAME
EOF
COPY <<'EOF' /g
hello $NAME
EOF
`)
	s := NewScope([]string{"PATH=/bin", "HOME=/root"}, NewVars(), nil)
	for k, v := range map[string]string{
		"UID": "1000", "GID": "50", "MODE": "0640", "SRC": "src", "NAME": "app", "SUM": "sha256:ab",
		"URL": "https://x/y.tgz", "VER": "2", "PORT": "80", "PORTS": "443/tcp 53/udp", "DATA": "/data", "SIG": "SIGINT",
	} {
		s.Declare(instructions.KeyValuePairOptional{Key: k, Value: ptr(v)})
	}
	cmds := d.Stages[0].Commands
	exp := make([]instructions.Command, len(cmds))
	for i, c := range cmds {
		x, err := d.Expand(c, s)
		if err != nil {
			t.Fatalf("Expand(%s): %v", c.Name(), err)
		}
		if x == c {
			t.Errorf("Expand(%s) returned the original", c.Name())
		}
		exp[i] = x
	}
	cp := exp[0].(*instructions.CopyCommand)
	if cp.Chown != "1000:50" || cp.Chmod != "0640" || !reflect.DeepEqual(cp.SourcePaths, []string{"src/a", "src/b"}) || cp.DestPath != "/opt/app/" {
		t.Errorf("COPY = %+v", cp)
	}
	add := exp[1].(*instructions.AddCommand)
	if add.Chown != "1000" || add.Checksum != "sha256:ab" || add.SourcePaths[0] != "https://x/y.tgz" {
		t.Errorf("ADD = %+v", add)
	}
	// All ENV words see the scope before this ENV (Docker's rule).
	env := exp[2].(*instructions.EnvCommand).Env
	if env[0].Value != "/home/app" || env[1].Value != "/root/bin:/bin" {
		t.Errorf("ENV = %+v", env)
	}
	labels := exp[3].(*instructions.LabelCommand).Labels
	if labels[0].Key != "org.app" || labels[0].Value != "v2" || labels[1].Value != "app" {
		t.Errorf("LABEL = %+v", labels)
	}
	if got := exp[4].(*instructions.WorkdirCommand).Path; got != "/srv/app" {
		t.Errorf("WORKDIR = %q", got)
	}
	if got := exp[5].(*instructions.UserCommand).User; got != "1000:50" {
		t.Errorf("USER = %q", got)
	}
	// Parsed ports are sorted words; a variable may expand to several ports.
	if got := exp[6].(*instructions.ExposeCommand).Ports; !reflect.DeepEqual(got, []string{"80", "443/tcp", "53/udp"}) {
		t.Errorf("EXPOSE = %q", got)
	}
	if got := exp[7].(*instructions.VolumeCommand).Volumes; !reflect.DeepEqual(got, []string{"/data", "/x"}) {
		t.Errorf("VOLUME = %q", got)
	}
	if got := exp[8].(*instructions.StopSignalCommand).Signal; got != "SIGINT" {
		t.Errorf("STOPSIGNAL = %q", got)
	}
	if got := exp[9].(*instructions.RunCommand).CmdLine; got[0] != "echo $NAME" {
		t.Errorf("RUN expanded: %q", got)
	}
	if got := exp[10].(*instructions.CmdCommand).CmdLine; got[0] != "echo $NAME" {
		t.Errorf("CMD expanded: %q", got)
	}
	if got := exp[11].(*instructions.EntrypointCommand).CmdLine; got[0] != "$NAME" {
		t.Errorf("ENTRYPOINT expanded: %q", got)
	}
	hd := exp[12].(*instructions.CopyCommand)
	if hd.DestPath != "/f-app" || hd.SourceContents[0].Data != "hello app\n" {
		t.Errorf("COPY heredoc = %+v", hd.SourcesAndDest)
	}
	if got := exp[13].(*instructions.CopyCommand).SourceContents[0].Data; got != "hello $NAME\n" {
		t.Errorf("quoted heredoc expanded: %q", got)
	}
	// The parsed Dockerfile is untouched.
	if orig := cmds[0].(*instructions.CopyCommand); orig.DestPath != "/opt/$NAME/" || orig.SourcePaths[0] != "$SRC/a" {
		t.Errorf("original mutated: %+v", orig.SourcesAndDest)
	}
	if orig := cmds[2].(*instructions.EnvCommand); orig.Env[0].Value != "/home/$NAME" {
		t.Errorf("original ENV mutated: %+v", orig.Env)
	}
	if orig := cmds[12].(*instructions.CopyCommand); orig.SourceContents[0].Data != "hello $NAME\n" {
		t.Errorf("original heredoc mutated")
	}
}

func TestExpandVolumeJSONAndPlain(t *testing.T) {
	d := mustParse(t, "FROM a\nVOLUME [\"/v/$X\"]\nVOLUME /p/$X /q\n")
	s := NewScope([]string{"X=1"}, nil, nil)
	for i, want := range [][]string{{"/v/1"}, {"/p/1", "/q"}} {
		x, err := d.Expand(d.Stages[0].Commands[i], s)
		if err != nil {
			t.Fatal(err)
		}
		if got := x.(*instructions.VolumeCommand).Volumes; !reflect.DeepEqual(got, want) {
			t.Errorf("VOLUME = %q, want %q", got, want)
		}
	}
}

func TestExpandRunMounts(t *testing.T) {
	d := mustParse(t, "FROM a\nRUN --mount=type=cache,target=$CACHE,id=$ID go build\n")
	run := d.Stages[0].Commands[0].(*instructions.RunCommand)
	var wg sync.WaitGroup
	for i, dir := range []string{"/one", "/two", "/three", "/four"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := string(rune('a' + i))
			s := NewScope([]string{"CACHE=" + dir, "ID=" + id}, nil, nil)
			x, err := d.Expand(run, s)
			if err != nil {
				t.Error(err)
				return
			}
			m := instructions.GetMounts(x.(*instructions.RunCommand))
			if len(m) != 1 || m[0].Type != instructions.MountTypeCache || m[0].Target != dir || m[0].CacheID != id {
				t.Errorf("mount = %+v", m)
			}
		}()
	}
	wg.Wait()
	if m := instructions.GetMounts(run); m[0].Target != "" {
		t.Errorf("original RUN mount state changed: %+v", m[0])
	}
}

func TestExpandErrorNamesLine(t *testing.T) {
	d := mustParse(t, "FROM a\n\nWORKDIR ${DIR:?DIR-is-required}\n")
	_, err := d.Expand(d.Stages[0].Commands[0], NewScope(nil, nil, nil))
	if err == nil || !strings.HasPrefix(err.Error(), "Dockerfile:3: WORKDIR: ") || !strings.Contains(err.Error(), "DIR-is-required") {
		t.Fatalf("err = %v", err)
	}
}

func TestExpandEnvShadowsArg(t *testing.T) {
	d := mustParse(t, "FROM a\nARG V=arg\nENV V=env\nWORKDIR /$V\n")
	s := runStage(t, d, 0, NewVars(), BuildArgs{"V": ptr("cli")}, nil)
	x, err := d.Expand(d.Stages[0].Commands[2], s)
	if err != nil || x.(*instructions.WorkdirCommand).Path != "/env" {
		t.Fatalf("got %+v, %v", x, err)
	}
}

// TestExpandArgNames: ARG names are expanded (Kaniko's rule), each seeing the ARGs before it;
// a name that expands to nothing is an error naming the line.
func TestExpandArgNames(t *testing.T) {
	d := mustParse(t, "FROM scratch\nENV src file3\nARG ${src}=context/bar/baz prefix_${src}=$file3\n")
	s := runStage(t, d, 0, NewVars(), nil, nil)
	if got := lookup(s, "file3"); got != "context/bar/baz" {
		t.Errorf("file3 = %q", got)
	}
	if got := lookup(s, "prefix_file3"); got != "context/bar/baz" {
		t.Errorf("prefix_file3 = %q", got)
	}
	x, err := d.Expand(d.Stages[0].Commands[1], NewScope([]string{"src=file3"}, NewVars(), nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := x.(*instructions.ArgCommand).Args[0].Key; got != "file3" {
		t.Errorf("expanded ARG key %q", got)
	}
	if d.Stages[0].Commands[1].(*instructions.ArgCommand).Args[0].Key != "${src}" {
		t.Errorf("Expand changed the parsed ARG")
	}
	bad := mustParse(t, "FROM scratch\nARG ${unset}=x\n")
	_, err = bad.Expand(bad.Stages[0].Commands[0], NewScope(nil, NewVars(), nil))
	if err == nil || !strings.Contains(err.Error(), "Dockerfile:2") || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty ARG name: %v", err)
	}
}

// TestExpandEmptyCopySource: a COPY/ADD source that expands to "" is an error naming the line.
func TestExpandEmptyCopySource(t *testing.T) {
	d := mustParse(t, "FROM scratch\nCOPY a $none /d/\nADD ${none} /d\nCOPY ${none:-a} /d\n")
	s := NewScope(nil, NewVars(), nil)
	for i, line := range []string{"Dockerfile:2", "Dockerfile:3"} {
		_, err := d.Expand(d.Stages[0].Commands[i], s)
		if err == nil || !strings.Contains(err.Error(), line) || !strings.Contains(err.Error(), "empty") {
			t.Errorf("%s: %v", line, err)
		}
	}
	if _, err := d.Expand(d.Stages[0].Commands[2], s); err != nil {
		t.Errorf("a default keeps the source: %v", err)
	}
}
