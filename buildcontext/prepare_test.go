package buildcontext

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPrepareDirectory(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"Dockerfile": "FROM scratch\n", "app/Dockerfile": "FROM busybox\n"})
	for _, spec := range []string{root, "dir://" + root} {
		got, err := Prepare(context.Background(), spec, Options{})
		if err != nil {
			t.Fatalf("Prepare(%s): %v", spec, err)
		}
		if got != root {
			t.Fatalf("Prepare(%s) = %s, want the directory itself", spec, got)
		}
	}
	got, err := Prepare(context.Background(), "dir://"+root, Options{SubPath: "app"})
	if err != nil {
		t.Fatal(err)
	}
	wantFile(t, filepath.Join(got, "Dockerfile"), "FROM busybox\n")

	// A relative path is made absolute.
	t.Chdir(root)
	got, err = Prepare(context.Background(), "app", Options{})
	if err != nil || got != filepath.Join(root, "app") {
		t.Fatalf("relative dir: got %q, %v", got, err)
	}
}

func TestPrepareDirectoryErrors(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"file": "x"})
	for _, c := range []struct {
		spec, sub, want string
	}{
		{filepath.Join(root, "missing"), "", "--context=" + filepath.Join(root, "missing")},
		{"dir://" + filepath.Join(root, "file"), "", "is not a directory"},
		{"dir://", "", "empty directory path"},
		{root, "nope", "--context-sub-path=nope"},
		{root, "file", "--context-sub-path=file: " + filepath.Join(root, "file") + " is not a directory"},
	} {
		_, err := Prepare(context.Background(), c.spec, Options{SubPath: c.sub})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Prepare(%q, sub %q) = %v, want an error containing %q", c.spec, c.sub, err, c.want)
		}
	}
}

// A sub-path cannot leave the context, by ".." or through a symlink inside it.
func TestPrepareSubPathStaysInContext(t *testing.T) {
	parent := t.TempDir()
	ctxDir := filepath.Join(parent, "ctx")
	writeFiles(t, parent, map[string]string{"outside/secret": "s", "ctx/inside/Dockerfile": "FROM scratch\n"})
	if err := os.Symlink(filepath.Join(parent, "outside"), filepath.Join(ctxDir, "escape")); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"../outside", "escape", "inside/../../outside"} {
		got, err := Prepare(context.Background(), ctxDir, Options{SubPath: sub})
		if err == nil && !strings.HasPrefix(got, ctxDir+string(filepath.Separator)) {
			t.Errorf("sub-path %q resolved to %s, outside the context %s", sub, got, ctxDir)
		}
	}
}

func TestPrepareUnsupportedKinds(t *testing.T) {
	for spec, want := range map[string]string{
		"gs://bucket/ctx.tar.gz":                                     "context kind gs:// (Google Cloud Storage) is not supported in this build",
		"s3://bucket/ctx.tar.gz":                                     "context kind s3:// (Amazon S3) is not supported in this build",
		"https://acct.blob.core.windows.net/container/ctx.tar.gz":    "context kind Azure blob storage is not supported in this build",
		"https://acct.blob.core.chinacloudapi.cn/container/c.tar.gz": "context kind Azure blob storage is not supported",
		"ftp://host/ctx.tar.gz":                                      `unknown context prefix "ftp://"`,
	} {
		_, err := Prepare(context.Background(), spec, Options{})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "--context="+spec) {
			t.Errorf("Prepare(%s) = %v, want an error naming the flag and containing %q", spec, err, want)
		}
	}
}

func TestPrepareRefusesNonEmptyWorkDir(t *testing.T) {
	o := work(t)
	writeFiles(t, o.WorkDir, map[string]string{"stale": "old"})
	o.Stdin = strings.NewReader(string(makeTar(t, true, file("Dockerfile", "FROM scratch\n"))))
	_, err := Prepare(context.Background(), "tar://stdin", o)
	if err == nil || !strings.Contains(err.Error(), o.WorkDir+" is not empty") {
		t.Fatalf("got %v, want a not-empty error naming %s", err, o.WorkDir)
	}
}

func TestRedact(t *testing.T) {
	if got := Redact("https://user:hunter2@host/ctx.tar.gz"); strings.Contains(got, "hunter2") {
		t.Fatalf("redact left the password: %s", got)
	}
	if got := Redact("git://ghp_token@github.com/org/app.git#main"); strings.Contains(got, "ghp_token") || !strings.HasSuffix(got, "github.com/org/app.git#main") {
		t.Fatalf("redact mishandled a token URL: %s", got)
	}
	if got := Redact("/workspace"); got != "/workspace" {
		t.Fatalf("redact changed a path: %s", got)
	}
}
