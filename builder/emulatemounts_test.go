package builder

import (
	"errors"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/dockerfile"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// emulatingBuild is a pod-mode build of df whose probe found no mount namespace, and the
// warnings it gives.
func emulatingBuild(t *testing.T, df string) (*build, *[]string) {
	t.Helper()
	d, err := dockerfile.Parse(dockerfile.Source{Name: "Dockerfile", Data: []byte(df)})
	if err != nil {
		t.Fatal(err)
	}
	var warnings []string
	b := &build{o: options{podMode: true, secrets: map[string]Secret{"tok": {ID: "tok", Value: []byte("v")}},
		reporter: ReporterFunc(func(e Event) {
			if e.Kind == EventWarning {
				warnings = append(warnings, e.Message)
			}
		})}, df: d, ignore: newIgnoreList([]string{"/kaniko", "/workspace", "/etc/hosts", "/var/run"}), emulation: &mountEmulation{}}
	b.emulation.probe.Do(func() { b.emulation.err = errors.New("unshare(CLONE_NEWNS): operation not permitted") })
	return b, &warnings
}

// runOf returns the RUN of line n (counting from 1) of the only stage, and its mounts.
func runOf(t *testing.T, b *build, n int) (*instructions.RunCommand, []dockerfile.Mount) {
	t.Helper()
	cmd, err := b.df.Expand(b.df.Stages[0].Commands[n-2], dockerfile.NewScope(nil, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	run := cmd.(*instructions.RunCommand)
	mounts, err := dockerfile.RunMounts(run, "/")
	if err != nil {
		t.Fatal(err)
	}
	return run, mounts
}

func TestEmulatedMountsWarnOncePerBuild(t *testing.T) {
	b, warnings := emulatingBuild(t, `FROM scratch
RUN --mount=type=cache,target=/root/.cache/go-build --mount=type=secret,id=tok,env=TOK go build
RUN --mount=type=tmpfs,target=/t --mount=type=secret,id=tok,target=/etc/tok true
RUN --mount=type=secret,id=tok,target=/etc/tok2 true
`)
	for line := 2; line <= 4; line++ {
		run, mounts := runOf(t, b, line)
		emulate, err := b.emulatesMounts(run, mounts)
		if err != nil || !emulate {
			t.Fatalf("line %d: emulate %v, %v", line, emulate, err)
		}
		b.warnEmulated(run, mounts)
	}
	if len(*warnings) != 2 {
		t.Fatalf("warnings %q, want one about the emulation and one about the secret file", *warnings)
	}
	first, secret := (*warnings)[0], (*warnings)[1]
	for _, want := range []string{"Dockerfile:2", "CAP_SYS_ADMIN", "operation not permitted",
		"cache /root/.cache/go-build: the cache directory itself", "symlink"} {
		if !strings.Contains(first, want) {
			t.Errorf("the emulation warning does not say %q: %s", want, first)
		}
	}
	if strings.Contains(first, "secret") {
		t.Errorf("the emulation warning names a secret given as a variable only: %s", first)
	}
	for _, want := range []string{"Dockerfile:3", "/etc/tok", "writable layer"} {
		if !strings.Contains(secret, want) {
			t.Errorf("the secret warning does not say %q: %s", want, secret)
		}
	}
}

func TestEmulatedMountsRefused(t *testing.T) {
	b, _ := emulatingBuild(t, `FROM scratch
RUN --network=none --mount=type=cache,target=/c true
RUN --mount=type=tmpfs,target=/kaniko true
RUN --mount=type=bind,target=/etc true
RUN --mount=type=cache,target=/workspace true
RUN --mount=type=cache,target=/var/run/x --mount=type=tmpfs,target=/kaniko/sub true
`)
	for line, want := range map[int]string{2: "--network=default", 3: "target=/kaniko", 4: "target=/etc", 5: "target=/workspace"} {
		run, mounts := runOf(t, b, line)
		if _, err := b.emulatesMounts(run, mounts); err == nil || !strings.Contains(err.Error(), want) ||
			!strings.Contains(err.Error(), "CAP_SYS_ADMIN") {
			t.Errorf("line %d: want an error naming %q and CAP_SYS_ADMIN, got %v", line, want, err)
		}
	}
	// Below an ignored path, nothing the build keeps is moved: that is fine.
	emulates := func(line int) bool {
		t.Helper()
		run, mounts := runOf(t, b, line)
		ok, err := b.emulatesMounts(run, mounts)
		if err != nil {
			t.Fatalf("line %d: %v", line, err)
		}
		return ok
	}
	if !emulates(6) {
		t.Error("line 6 is not emulated")
	}
	// A pod that can make namespaces, and directory mode, emulate nothing.
	b.emulation.err = nil
	if emulates(2) {
		t.Error("emulated with a mount namespace at hand")
	}
	b.o.podMode = false
	b.emulation.err = errors.New("no")
	if emulates(2) {
		t.Error("emulated in directory mode")
	}
}
