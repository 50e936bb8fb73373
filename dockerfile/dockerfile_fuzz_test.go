package dockerfile

import (
	"bytes"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/patternmatcher/ignorefile"
)

// fuzzName is the name fuzzed Dockerfiles are parsed under; every error must start with it.
const fuzzName = "fuzz/Dockerfile"

// maxScope bounds the variables a fuzzed Dockerfile may build up (ENV A=$A$A doubles A each
// line): beyond it the harness stops expanding, as the point is the parser, not the memory of
// the machine.
const maxScope = 1 << 20

// dockerfileSeeds are real Dockerfiles (the repository's own) and ones written to reach each
// part of the syntax: directives, heredocs, RUN flags, ARG and ENV expansion, ONBUILD.
func dockerfileSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	files, _ := filepath.Glob("../examples/*/Dockerfile")
	for _, p := range append(files, "../deploy/Dockerfile") {
		if data, err := os.ReadFile(p); err == nil {
			seeds = append(seeds, data)
		}
	}
	for _, s := range []string{
		"FROM scratch\n",
		"# syntax=docker/dockerfile:1\n# escape=`\nFROM busybox AS a\nRUN echo `\n  hi\n",
		"ARG BASE=busybox\nARG TAG\nFROM ${BASE}:${TAG:-latest} AS build\nARG TAG\nENV A=$TAG B=\"${A}x\" C=${A:+set}\n" +
			"WORKDIR /src/${A:-none}\nCOPY --chown=${UID}:${GID} --chmod=0755 a* b/ /dst/\nRUN echo $A\n" +
			"FROM build\nCOPY --from=build /src /src\nCOPY --from=0 /x /y\nLABEL \"k\"=\"v\" k2=v2\nEXPOSE 80/tcp ${PORTS}\n" +
			"VOLUME [\"/data\"]\nUSER ${UID}\nSTOPSIGNAL SIGTERM\nHEALTHCHECK CMD true\nSHELL [\"/bin/sh\", \"-c\"]\n" +
			"ONBUILD RUN echo hi\nCMD [\"a\"]\nENTRYPOINT exec a\nMAINTAINER me\n",
		"FROM busybox\nRUN <<EOF\necho hi\nEOF\nCOPY <<EOF /f\nhello $NAME\nEOF\nCOPY <<'EOF' <<-\"E2\" /g/\nliteral $NAME\nEOF\n\ttabbed\n\tE2\n",
		"FROM busybox\nRUN --mount=type=cache,target=/root/.cache,id=go,sharing=locked,mode=0700,uid=1,gid=2 " +
			"--mount=type=secret,id=tok,env=TOKEN,required --mount=type=bind,from=build,source=/out,target=/b,rw " +
			"--mount=type=tmpfs,target=/t,size=10m --mount=type=ssh --network=none --security=insecure true\n",
		"FROM busybox\nADD --checksum=sha256:abc --chown=1 --keep-git-dir=true https://x/y.tgz git@github.com:o/r.git /d/\n" +
			"COPY --parents --link --exclude=*.md a/./b /c/\n",
		"ARG ${A}=x\nFROM a\nARG ${src}=v B=${src}\n",
		"FROM a AS one\nFROM b AS One\n",
		"FROM a\nRUN --mount=type=cache,target=/ true\nRUN --mount=type=bogus true\nRUN --mount=type=tmpfs,size=huge,target=/t true\n",
		"FROM a\nENV A=x\nENV A=$A$A\nENV A=$A$A\nENV A=$A$A\n",
		"# check=skip=all;error=true\nFROM a\n",
		"RUN x\n",
		"FROM a\nRUN \\\n\n  true\nCOPY\n",
		"FROM a\nCOPY $EMPTY /x\n",
		"FROM --platform=$BUILDPLATFORM a\nFROM --platform=linux/x86_64 b\n",
	} {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

var errorAt = regexp.MustCompile(`^` + regexp.QuoteMeta(fuzzName) + `:(\d+): `)

// checkError fails t unless err starts with the Dockerfile's name and, when it names a line,
// that line is within lines; with line > 0, it must name exactly that line.
func checkError(t *testing.T, err error, lines, line int) {
	t.Helper()
	msg := err.Error()
	if !strings.HasPrefix(msg, fuzzName+":") {
		t.Fatalf("error %q does not start with %s:", msg, fuzzName)
	}
	m := errorAt.FindStringSubmatch(msg)
	if m == nil {
		if line > 0 {
			t.Fatalf("error %q names no line, want line %d", msg, line)
		}
		return
	}
	n, _ := strconv.Atoi(m[1])
	if n < 1 || n > lines {
		t.Fatalf("error %q names line %d of %d", msg, n, lines)
	}
	if line > 0 && n != line {
		t.Fatalf("error %q names line %d, want %d", msg, n, line)
	}
}

func lineCount(data []byte) int { return bytes.Count(data, []byte("\n")) + 1 }

// FuzzParse parses arbitrary Dockerfiles and, when they parse, resolves every stage's base,
// the stages a build needs, and expands every instruction as a build would (ARG and ENV feed
// the scope of the instructions after them), and reads every RUN's mounts. Nothing may panic;
// every error starts with the file's name, and a line it names is in the file.
func FuzzParse(f *testing.F) {
	for _, s := range dockerfileSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := lineCount(data)
		d, err := Parse(Source{Name: fuzzName, Data: data})
		if err != nil {
			checkError(t, err, lines, 0)
			return
		}
		if len(d.Stages) == 0 {
			t.Fatal("Parse returned no stage and no error")
		}
		for _, w := range d.Warnings {
			if !strings.HasPrefix(w, fuzzName+":") {
				t.Errorf("warning %q does not start with the file name", w)
			}
		}
		meta := NewVars("BUILDPLATFORM", "linux/amd64", "TAG", "1")
		for _, a := range d.MetaArgs {
			for _, kv := range a.Args {
				if kv.Value != nil && len(*kv.Value) < maxScope {
					meta = NewVars(append(metaPairs(meta), kv.Key, *kv.Value)...)
				}
			}
		}
		if _, err := d.StagesFor("", meta); err != nil {
			checkError(t, err, lines, 0)
		}
		args := BuildArgs{"TAG": ptr("2"), "UNUSED": nil}
		for i, st := range d.Stages {
			if st.Line < 1 || st.Line > lines {
				t.Errorf("stage %d on line %d of %d", i, st.Line, lines)
			}
			if _, err := d.BaseOf(i, meta); err != nil {
				checkError(t, err, lines, st.Line)
			}
			expandStage(t, d, st, NewScope([]string{"PATH=/bin"}, meta, args), lines)
		}
	})
}

// expandStage expands a stage's instructions in order, as the builder does.
func expandStage(t *testing.T, d *Dockerfile, st Stage, s *Scope, lines int) {
	t.Helper()
	size := 0
	for _, cmd := range st.Commands {
		x, err := d.Expand(cmd, s)
		if err != nil {
			checkError(t, err, lines, lineOf(cmd))
			continue
		}
		switch c := x.(type) {
		case *instructions.ArgCommand:
			for _, kv := range c.Args {
				s.Declare(kv)
				if kv.Value != nil {
					size += len(*kv.Value)
				}
			}
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				s.SetEnv(kv.Key, kv.Value)
				size += len(kv.Value)
			}
		case *instructions.RunCommand:
			if _, err := RunMounts(c, "/work"); err != nil && !strings.HasPrefix(err.Error(), "--mount=type=") {
				t.Errorf("RunMounts error %q does not name the mount", err)
			}
		}
		if size > maxScope {
			return
		}
	}
}

func metaPairs(v *Vars) []string {
	var kv []string
	for _, k := range v.Keys() {
		val, _ := v.Get(k)
		kv = append(kv, k, val)
	}
	return kv
}

// FuzzExpand puts a word in every place ARG and ENV expansion reaches (ENV, LABEL, WORKDIR,
// USER, COPY and ADD sources, --chown and --from, EXPOSE, VOLUME, STOPSIGNAL, ARG names and
// defaults, a heredoc, RUN --mount options and FROM) with a variable set to value. Nothing may
// panic, and an error must name the file and the line of the instruction it is about.
func FuzzExpand(f *testing.F) {
	for _, w := range []string{"$V", "${V}", "${V:-d}", "${V:+a}", "${V#*/}", "${V%%.*}", "${V/a/b}", "${V?unset}",
		"'$V'", "\"$V\"", `\$V`, "${", "${V", "$", "${V:-${V:-x}}", "${:-}", "${V:?}", "a b", "\\"} {
		f.Add(w, "val/ue.txt")
	}
	f.Add("$V", "")
	f.Fuzz(func(t *testing.T, word, value string) {
		word = strings.NewReplacer("\n", " ", "\r", " ").Replace(word)
		lines := []string{
			"ARG V",
			"FROM base:${V}",
			"ARG V",
			"ENV E=" + word,
			"LABEL l=" + word,
			"WORKDIR /" + word,
			"USER " + word,
			"COPY --chown=" + word + " " + word + " /dst/",
			"ADD " + word + " /dst/",
			"COPY --from=" + word + " /a /b",
			"EXPOSE " + word,
			"VOLUME " + word,
			"STOPSIGNAL " + word,
			"ARG " + word + "=" + word,
			"RUN --mount=type=cache,target=/c" + word + ",id=" + word + " true",
			"COPY <<EOF /h",
			word,
			"EOF",
		}
		data := []byte(strings.Join(lines, "\n") + "\n")
		d, err := Parse(Source{Name: fuzzName, Data: data})
		if err != nil {
			checkError(t, err, len(lines)+1, 0)
			return
		}
		meta := NewVars("V", value)
		if _, err := d.BaseOf(0, meta); err != nil {
			checkError(t, err, len(lines)+1, 2)
		}
		args := BuildArgs{"V": &value}
		for _, st := range d.Stages {
			expandStage(t, d, st, NewScope(nil, meta, args), len(lines)+1)
		}
	})
}

// FuzzRunMounts reads RUN --mount=<opts> as a build does. Nothing may panic; what it accepts
// has a clean absolute target that is not the root (none only for a secret given as an
// environment variable), a clean relative source, permission bits only, a sharing mode for
// a cache and an id for a cache, secret or ssh agent.
func FuzzRunMounts(f *testing.F) {
	for _, s := range []string{
		"type=cache,target=/root/.cache", "type=cache,id=go,target=gocache,sharing=locked,mode=0700,uid=1000,gid=100,from=base,source=/seed",
		"type=secret,id=tok", "type=secret,target=/etc/creds,required", "type=secret,id=tok,env=TOKEN",
		"type=secret,id=tok,env=TOKEN,target=/t,mode=0440,uid=5,gid=6", "target=/ctx", "type=bind,from=build,source=out/../bin,target=/b,rw",
		"type=tmpfs,target=/t,size=10m", "type=ssh", "type=ssh,id=gh,required", "type=ssh,target=/s",
		"type=cache,target=/", "type=tmpfs", "type=ssh,source=/x,target=/s", "type=cache,target=../../..",
		"type=bind,source=../../etc,target=x", "type=secret,id=../../../etc/passwd", "type=cache,mode=07777,target=/m",
		"type=secret,env=", "type=bind,target=/x,source=/", "type=cache,target=/a,sharing=weird",
	} {
		f.Add(s, "/work")
	}
	f.Add("type=cache,target=x", "")
	f.Add("type=cache,target=x", "../..")
	f.Fuzz(func(t *testing.T, opts, workdir string) {
		if strings.ContainsAny(opts, "\n\r") {
			return
		}
		d, err := Parse(Source{Name: fuzzName, Data: []byte("FROM a\nRUN --mount=" + opts + " true\n")})
		if err != nil {
			checkError(t, err, 3, 0)
			return
		}
		x, err := d.Expand(d.Stages[0].Commands[0], NewScope(nil, nil, nil))
		if err != nil {
			checkError(t, err, 3, 2)
			return
		}
		mounts, err := RunMounts(x.(*instructions.RunCommand), workdir)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "--mount=type=") {
				t.Errorf("error %q does not name the mount", err)
			}
			return
		}
		for _, m := range mounts {
			checkMount(t, m)
		}
	})
}

func checkMount(t *testing.T, m Mount) {
	t.Helper()
	bad := func(what string) { t.Errorf("mount %+v: %s", m, what) }
	switch {
	case m.Target == "" && !(m.Type == instructions.MountTypeSecret && m.Env != ""):
		bad("no target")
	case m.Target != "" && (!path.IsAbs(m.Target) || path.Clean(m.Target) != m.Target || m.Target == "/"):
		bad("target not clean, absolute and below /")
	case m.Source != "" && (path.IsAbs(m.Source) || path.Clean(m.Source) != m.Source || m.Source == ".." || strings.HasPrefix(m.Source, "../")):
		bad("source not clean and relative")
	case m.Mode&^os.ModePerm != 0:
		bad("mode beyond permission bits")
	}
	switch m.Type {
	case instructions.MountTypeCache:
		if m.ID == "" || m.Sharing != instructions.MountSharingShared && m.Sharing != instructions.MountSharingPrivate &&
			m.Sharing != instructions.MountSharingLocked {
			bad("cache without id or sharing")
		}
	case instructions.MountTypeSecret, instructions.MountTypeSSH:
		if m.ID == "" {
			bad("no id")
		}
	}
}

// FuzzOnBuild parses ONBUILD triggers as a base image's config carries them: no panic, and
// errors name the image and the trigger.
func FuzzOnBuild(f *testing.F) {
	for _, s := range []string{"RUN echo hi", "COPY . /app", "ONBUILD RUN x", "FROM x", "MAINTAINER me", "ADD <<EOF /x\nhi\nEOF",
		"RUN --mount=type=cache,target=/c true", "BOGUS x", "", "ENV A=$B", "RUN a\nRUN b"} {
		f.Add(s, "RUN true")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		cmds, err := OnBuildCommands([]string{a, b}, "base:1")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "base:1: ONBUILD trigger ") {
				t.Errorf("error %q does not name the image and the trigger", err)
			}
			return
		}
		for _, c := range cmds {
			if c == nil {
				t.Fatal("a nil command")
			}
		}
	})
}

// FuzzIgnore reads a .dockerignore and asks about a directory and a path below it. Nothing may
// panic; ExcludedDir must agree with Excluded; when it says nothing below an excluded
// directory can be included (so a walk prunes it), everything below must be excluded; the
// context root is never excluded; and LoadIgnore's errors name the file.
func FuzzIgnore(f *testing.F) {
	if data, err := os.ReadFile("../.dockerignore"); err == nil {
		f.Add(data, "bin", "executor")
	}
	for _, s := range []struct{ file, dir, child string }{
		{"*\n!src\n", "src", "a.go"},
		{"node_modules\n**/*.log\n!keep.log\n", "node_modules", "x/keep.log"},
		{"a/*/c\n!a/b/c/d\n", "a/b/c", "d"},
		{"**\n!**/*.go\n", "x/y", "z.go"},
		{"dir\n!dir/sub/*.txt\n", "dir", "sub/a.txt"},
		{"[\n", "x", "y"},
		{"!\n/\n..\n./a/../b\n", "b", "c"},
		{"a?c\n![ab]*\n", "abc", "d"},
		{"# comment\n  spaced  \n\\!literal\n", "!literal", "x"},
		{"docs/**/*.md\n!docs/keep/**\n", "docs/keep", "a/b.md"},
		{"*/\n", "a", "b"},
	} {
		f.Add([]byte(s.file), s.dir, s.child)
	}
	f.Fuzz(func(t *testing.T, file []byte, dir, child string) {
		patterns, err := ignorefile.ReadAll(bytes.NewReader(file))
		if err != nil {
			loadIgnoreNamesFile(t, file)
			return
		}
		ig, err := NewIgnore(patterns)
		if err != nil {
			loadIgnoreNamesFile(t, file)
			return
		}
		for _, root := range []string{"", ".", "/", "./"} {
			if ig.Excluded(root) {
				t.Fatalf("the context root %q is excluded", root)
			}
		}
		excluded, mayInclude := ig.ExcludedDir(dir)
		if excluded != ig.Excluded(dir) {
			t.Fatalf("ExcludedDir(%q) = %v, Excluded = %v", dir, excluded, !excluded)
		}
		below := path.Join(dir, child)
		if excluded && !mayInclude && cleanRel(below) != cleanRel(dir) && strings.HasPrefix(cleanRel(below), cleanRel(dir)+"/") &&
			!ig.Excluded(below) {
			t.Fatalf("ExcludedDir(%q) says nothing below is included, but %q is", dir, below)
		}
	})
}

// loadIgnoreNamesFile writes an ignore file that could not be read or compiled and checks
// that LoadIgnore's error names it.
func loadIgnoreNamesFile(t *testing.T, data []byte) {
	dir := t.TempDir()
	p := filepath.Join(dir, ".dockerignore")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadIgnore(dir, "")
	if err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("LoadIgnore of an invalid file: %v, want an error naming %s", err, p)
	}
}
