package dockerfile

import (
	"reflect"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// expandedRun parses a one-RUN Dockerfile and expands it with no variables,
// which is when BuildKit fills in the mount fields.
func expandedRun(t *testing.T, line string) *instructions.RunCommand {
	t.Helper()
	d := mustParse(t, "FROM busybox\n"+line+"\n")
	cmd, err := d.Expand(d.Stages[0].Commands[0], NewScope(nil, nil, nil))
	if err != nil {
		t.Fatalf("Expand: %v", err)
	}
	return cmd.(*instructions.RunCommand)
}

func TestRunMountsDefaults(t *testing.T) {
	tests := []struct {
		name string
		line string
		want []Mount
	}{
		{"cache keyed by target", "RUN --mount=type=cache,target=/root/.cache true",
			[]Mount{{Type: "cache", Target: "/root/.cache", ID: "/root/.cache", Source: ".", Sharing: "shared", Mode: 0o755}}},
		{"cache with everything", "RUN --mount=type=cache,id=go,target=gocache,sharing=locked,mode=0700,uid=1000,gid=100,from=base,source=/seed true",
			[]Mount{{Type: "cache", Target: "/src/gocache", ID: "go", From: "base", Source: "seed", Sharing: "locked", Mode: 0o700, UID: 1000, GID: 100}}},
		{"secret default target", "RUN --mount=type=secret,id=tok cat /run/secrets/tok",
			[]Mount{{Type: "secret", Target: "/run/secrets/tok", ID: "tok", ReadOnly: true, Mode: 0o400}}},
		{"secret id from target", "RUN --mount=type=secret,target=/etc/creds,required true",
			[]Mount{{Type: "secret", Target: "/etc/creds", ID: "creds", ReadOnly: true, Mode: 0o400, Required: true}}},
		{"secret as env only", "RUN --mount=type=secret,id=tok,env=TOKEN true",
			[]Mount{{Type: "secret", ID: "tok", Env: "TOKEN", ReadOnly: true, Mode: 0o400}}},
		{"secret as env and file", "RUN --mount=type=secret,id=tok,env=TOKEN,target=/t,mode=0440,uid=5,gid=6 true",
			[]Mount{{Type: "secret", ID: "tok", Env: "TOKEN", Target: "/t", ReadOnly: true, Mode: 0o440, UID: 5, GID: 6}}},
		{"bind defaults to read-only context", "RUN --mount=target=/ctx true",
			[]Mount{{Type: "bind", Target: "/ctx", Source: ".", ReadOnly: true}}},
		{"bind rw from a stage", "RUN --mount=type=bind,from=build,source=out/../bin,target=/b,rw true",
			[]Mount{{Type: "bind", Target: "/b", From: "build", Source: "bin"}}},
		{"tmpfs size", "RUN --mount=type=tmpfs,target=/t,size=10m true",
			[]Mount{{Type: "tmpfs", Target: "/t", Source: ".", Size: 10 << 20}}},
		{"ssh targets count", "RUN --mount=type=ssh --mount=type=ssh,id=gh,required --mount=type=ssh,target=/s true",
			[]Mount{
				{Type: "ssh", Target: "/run/buildkit/ssh_agent.0", ID: "default", Source: ".", ReadOnly: true, Mode: 0o600},
				{Type: "ssh", Target: "/run/buildkit/ssh_agent.1", ID: "gh", Source: ".", ReadOnly: true, Mode: 0o600, Required: true},
				{Type: "ssh", Target: "/s", ID: "default", Source: ".", ReadOnly: true, Mode: 0o600},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RunMounts(expandedRun(t, tt.line), "/src")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestRunMountsErrors(t *testing.T) {
	for line, want := range map[string]string{
		"RUN --mount=type=cache,target=/ true":          "type=cache: cannot mount over the whole root",
		"RUN --mount=type=tmpfs true":                   "type=tmpfs: no target given",
		"RUN --mount=type=ssh,source=/x,target=/s true": "type=ssh: an ssh mount takes no source",
	} {
		_, err := RunMounts(expandedRun(t, line), "/")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: want an error containing %q, got %v", line, want, err)
		}
	}
}
