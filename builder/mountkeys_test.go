package builder

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/kilnbuild/kiln/cache"
	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// mountKeyBuild is a build whose stage 0 is done, with a context holding data/file,
// data/notes.tmp (excluded by .dockerignore) and other.txt.
func mountKeyBuild(t *testing.T, df string) (*build, string) {
	t.Helper()
	ctxDir := t.TempDir()
	for p, content := range map[string]string{"data/file": "v1", "data/notes.tmp": "x", "other.txt": "o"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(ctxDir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ctxDir, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, err := dockerfile.Parse(dockerfile.Source{Name: "Dockerfile", Data: []byte(df)})
	if err != nil {
		t.Fatal(err)
	}
	ign, err := dockerfile.NewIgnore([]string{"**/*.tmp"})
	if err != nil {
		t.Fatal(err)
	}
	b := &build{o: options{contextDir: ctxDir}, df: d, dockerignore: ign,
		results: map[int]*stageResult{0: {image: empty.Image}}}
	return b, ctxDir
}

// runInputs returns the mount inputs of the RUN of stage 1.
func runInputs(t *testing.T, b *build) []cache.Input {
	t.Helper()
	cmd, err := b.df.Expand(b.df.Stages[1].Commands[0], dockerfile.NewScope(nil, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	in, err := b.mountInputs(context.Background(), 1, cmd.(*instructions.RunCommand), "/")
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func names(in []cache.Input) string {
	var out []string
	for _, i := range in {
		out = append(out, i.Name+"="+i.Value)
	}
	return strings.Join(out, " ")
}

func TestMountInputsCoverWhatBindsShow(t *testing.T) {
	b, ctxDir := mountKeyBuild(t, "FROM scratch AS s0\nFROM scratch\nRUN --mount=type=bind,source=data,target=/d true\n")
	before := runInputs(t, b)
	got := names(before)
	if !strings.Contains(got, "file:data/file=") || strings.Contains(got, "notes.tmp") || strings.Contains(got, "other.txt") {
		t.Fatalf("inputs %s: want data/file only", got)
	}
	// An unused or ignored file does not change the key; a mounted one does.
	for p, changes := range map[string]bool{"other.txt": false, "data/notes.tmp": false, "data/file": true} {
		if err := os.WriteFile(filepath.Join(ctxDir, p), []byte("changed "+p), 0o644); err != nil {
			t.Fatal(err)
		}
		after := runInputs(t, b)
		if (cache.NewKey("", before...) != cache.NewKey("", after...)) != changes {
			t.Errorf("changing %s: key changed = %v, want %v", p, !changes, changes)
		}
		before = after
	}

	b, _ = mountKeyBuild(t, "FROM scratch AS s0\nFROM scratch\nRUN --mount=type=bind,from=s0,target=/d --mount=type=cache,from=s0,target=/c true\n")
	d, _ := empty.Image.Digest()
	if got, want := names(runInputs(t, b)), "from=stage:"+d.String(); got != want+" "+want {
		t.Errorf("inputs of from= mounts: %s, want the stage digest twice", got)
	}
}

func TestMountInputsLeaveOutCacheTmpfsSecretAndSSH(t *testing.T) {
	b, _ := mountKeyBuild(t, "FROM scratch AS s0\nFROM scratch\n"+
		"RUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t --mount=type=secret,id=tok --mount=type=ssh true\n")
	b.o.secrets = map[string]Secret{"tok": {ID: "tok", Value: []byte("s3cret")}}
	if in := runInputs(t, b); len(in) != 0 {
		t.Errorf("inputs %s, want none", names(in))
	}
}
