package cache

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNewKeyDependsOnEveryInputAndParent(t *testing.T) {
	base := NewKey("sha256:base", Text(InputInstruction, "RUN make"), Map(InputArgs, map[string]string{"A": "1"}))
	if len(base) != 64 {
		t.Fatalf("key %q is not 64 hex characters", base)
	}
	if again := NewKey("sha256:base", Text(InputInstruction, "RUN make"), Map(InputArgs, map[string]string{"A": "1"})); again != base {
		t.Fatalf("same inputs, different keys: %s %s", base, again)
	}
	for name, k := range map[string]Key{
		"parent":      NewKey("sha256:other", Text(InputInstruction, "RUN make"), Map(InputArgs, map[string]string{"A": "1"})),
		"instruction": NewKey("sha256:base", Text(InputInstruction, "RUN make all"), Map(InputArgs, map[string]string{"A": "1"})),
		"arg value":   NewKey("sha256:base", Text(InputInstruction, "RUN make"), Map(InputArgs, map[string]string{"A": "2"})),
		"input name":  NewKey("sha256:base", Text(InputEnv, "RUN make"), Map(InputArgs, map[string]string{"A": "1"})),
		// Field boundaries are part of the encoding: "RUN make" + "" differs from "RUN ma" + "ke".
		"boundaries": NewKey("sha256:base", Text(InputInstruction, "RUN ma"), Text("ke", ""), Map(InputArgs, map[string]string{"A": "1"})),
	} {
		if k == base {
			t.Errorf("changing the %s did not change the key", name)
		}
	}
	if Map("m", map[string]string{"a": "1", "b": "2"}) != Map("m", map[string]string{"b": "2", "a": "1"}) {
		t.Error("Map depends on iteration order")
	}
	if List("env", []string{"A=1", "B=2"}) == List("env", []string{"B=2", "A=1"}) {
		t.Error("List must keep order (later env entries shadow earlier ones)")
	}
}

// fileKey keys the sources in dir as a COPY would see them.
func fileKey(t *testing.T, dir string, exclude func(string) bool, srcs ...string) Key {
	t.Helper()
	in, err := FileInputs(Sources{Root: dir, Paths: srcs, Exclude: exclude})
	if err != nil {
		t.Fatal(err)
	}
	return NewKey("p", in...)
}

func TestFileInputsSeeRenamesModesContentNotIgnoredOrUnusedFiles(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "app", "sub"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "app", "code.bin"), []byte("v1"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "app", "sub", "x.txt"), []byte("x"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "app", "debug.log"), []byte("noise"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "unused.txt"), []byte("u"), 0o644))
	must(os.Symlink("code.bin", filepath.Join(dir, "app", "link")))
	ignoreLogs := func(rel string) bool { return strings.HasSuffix(rel, ".log") }
	key := func() Key { return fileKey(t, dir, ignoreLogs, "app") }
	k0 := key()

	must(os.WriteFile(filepath.Join(dir, "app", "debug.log"), []byte("other noise"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "unused.txt"), []byte("changed"), 0o644))
	if k := key(); k != k0 {
		t.Fatal("an ignored or unused file changed the key")
	}
	check := func(what string, change func()) {
		t.Helper()
		prev := key()
		change()
		if key() == prev {
			t.Errorf("%s did not change the key", what)
		}
	}
	check("a content change", func() { must(os.WriteFile(filepath.Join(dir, "app", "code.bin"), []byte("v2"), 0o644)) })
	check("a mode change", func() { must(os.Chmod(filepath.Join(dir, "app", "code.bin"), 0o755)) })
	check("a rename", func() {
		must(os.Rename(filepath.Join(dir, "app", "sub", "x.txt"), filepath.Join(dir, "app", "sub", "y.txt")))
	})
	check("a symlink target change", func() {
		must(os.Remove(filepath.Join(dir, "app", "link")))
		must(os.Symlink("sub", filepath.Join(dir, "app", "link")))
	})
	if os.Geteuid() == 0 {
		check("an owner change", func() { must(os.Lchown(filepath.Join(dir, "app", "code.bin"), 1234, 1234)) })
	}
	check("a new file", func() { must(os.WriteFile(filepath.Join(dir, "app", "new.txt"), nil, 0o644)) })

	// Wildcards cover what they match, and only that.
	kw := fileKey(t, dir, nil, "app/*.txt")
	must(os.WriteFile(filepath.Join(dir, "app", "code.bin"), []byte("v3"), 0o644))
	if fileKey(t, dir, nil, "app/*.txt") != kw {
		t.Error("a file the wildcard does not match changed the key")
	}
	must(os.WriteFile(filepath.Join(dir, "app", "new.txt"), []byte("n"), 0o644))
	if fileKey(t, dir, nil, "app/*.txt") == kw {
		t.Error("a matched file's change did not change the key")
	}
	// A missing source is an input too (so it appearing later misses), not an error.
	in, err := FileInputs(Sources{Root: dir, Paths: []string{"nope"}})
	if err != nil || len(in) != 1 || in[0].Value != "missing" {
		t.Fatalf("missing source: %v %v", in, err)
	}
}

func TestExplainNamesWhatChanged(t *testing.T) {
	prev := Entry{Parent: "p1", Inputs: []Input{Text(InputInstruction, "COPY app /app"),
		{Name: FilePrefix + "app/code.bin", Value: "file 644 0:0 sha256:aa"},
		{Name: FilePrefix + "app/old.txt", Value: "file 644 0:0 sha256:bb"}}}
	cases := []struct {
		parent Key
		inputs []Input
		want   string
	}{
		{"p1", []Input{Text(InputInstruction, "COPY app /app"), {Name: FilePrefix + "app/code.bin", Value: "file 644 0:0 sha256:cc"},
			{Name: FilePrefix + "app/old.txt", Value: "file 644 0:0 sha256:bb"}}, "app/code.bin changed (content)"},
		{"p1", []Input{Text(InputInstruction, "COPY app /app"), {Name: FilePrefix + "app/code.bin", Value: "file 755 0:0 sha256:aa"}},
			"app/code.bin changed (mode 644 -> 755), app/old.txt removed"},
		{"p1", []Input{Text(InputInstruction, "COPY app /srv"), {Name: FilePrefix + "app/code.bin", Value: "file 644 0:0 sha256:aa"},
			{Name: FilePrefix + "app/old.txt", Value: "file 644 0:0 sha256:bb"}}, "instruction changed"},
		{"p2", prev.Inputs, "an earlier instruction or the base image changed"},
	}
	for _, c := range cases {
		if got := Explain(prev, c.parent, c.inputs); !strings.HasPrefix(got, c.want) {
			t.Errorf("Explain = %q, want prefix %q", got, c.want)
		}
	}
}
