package executor

import (
	"strings"
	"testing"
)

// fuzzSecret is a value the flag fuzz targets give secrets and build args: it must never show
// in an error or a warning.
const fuzzSecret = "kiln-fuzz-s3cret"

// FuzzSecretFlag reads --secret values, then resolves them with every environment variable
// set to a secret value. Nothing may panic, errors name --secret, and no error shows the
// secret value.
func FuzzSecretFlag(f *testing.F) {
	for _, s := range []string{"id=tok,src=/run/tok", "id=tok,env=TOKEN", "id=tok", "id=a,type=env,src=VAR", "id=a,type=file",
		"src=/x", "id=a,bogus=1", "id=a,type=dir", `"id=a,b",src=x`, `id="unterminated`, "id=a,env", "ID=x,SOURCE=y", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		sf, err := parseSecretFlag(spec)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "--secret ") {
				t.Errorf("error %q does not name --secret", err)
			}
			return
		}
		if sf.id == "" {
			t.Fatalf("%q: accepted without an id", spec)
		}
		_, err = sf.secret(func(string) (string, bool) { return fuzzSecret, true })
		if err != nil && strings.Contains(err.Error(), fuzzSecret) {
			t.Errorf("error %q shows the secret", err)
		}
	})
}

// FuzzSSHFlag reads --ssh values with and without SSH_AUTH_SOCK: no panic, errors name --ssh,
// and what is accepted has an id and at least one path.
func FuzzSSHFlag(f *testing.F) {
	for _, s := range []string{"default", "gh=/tmp", "gh=/etc/hostname,/etc/hosts", "=x", "a=", "a=,,", "a=/nonexistent", ""} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, spec string, sock bool) {
		a, err := parseSSHFlag(spec, func(k string) (string, bool) {
			if k == "SSH_AUTH_SOCK" && sock {
				return "/", true
			}
			return "", false
		})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "--ssh ") {
				t.Errorf("error %q does not name --ssh", err)
			}
			return
		}
		if a.ID == "" || len(a.Paths) == 0 {
			t.Errorf("%q: accepted as %+v", spec, a)
		}
	})
}

// FuzzRegistryFlags reads --registry-mirror and --registry-map values and their
// KANIKO_REGISTRY_* variables: no panic, errors name the flag, accepted mirrors are trimmed
// hosts without '=' or spaces, and accepted maps have both sides.
func FuzzRegistryFlags(f *testing.F) {
	f.Add("mirror.gcr.io;registry-1.example:5000/path", "index.docker.io=mirror.example;gcr.io=m2", "m3; m4")
	f.Add(" ; ;", "a=b=c", "")
	f.Add("a=b", "=x", "a b")
	f.Fuzz(func(t *testing.T, mirror, regMap, env string) {
		lookup := func(string) (string, bool) { return env, env != "" }
		mirrors, err := parseMirrors(withEnv([]string{mirror}, envRegistryMirror, lookup))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "--registry-mirror ") {
				t.Errorf("error %q does not name --registry-mirror", err)
			}
		}
		for _, m := range mirrors {
			if m == "" || m != strings.TrimSpace(m) || strings.ContainsAny(m, "= ") {
				t.Errorf("mirror %q accepted", m)
			}
		}
		maps, err := parseRegistryMaps(withEnv([]string{regMap}, envRegistryMap, lookup))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "--registry-map ") {
				t.Errorf("error %q does not name --registry-map", err)
			}
			return
		}
		for from, tos := range maps {
			if from == "" || len(tos) == 0 {
				t.Errorf("map %q -> %q accepted", from, tos)
			}
			for _, to := range tos {
				if to == "" {
					t.Errorf("map %q -> empty accepted", from)
				}
			}
		}
	})
}

// FuzzBuildContextFlag reads --build-context values: no panic, errors name --build-context,
// and none shows the password of a URL in the value.
func FuzzBuildContextFlag(f *testing.F) {
	for _, s := range []string{"base=docker-image://alpine:3", "src=dir:///work/src", "src=../src", "lay=oci-layout:///l@sha256:" + strings.Repeat("a", 64),
		"repo=https://github.com/o/r.git#main:sub", "repo=git@github.com:o/r.git#v1", "tar=https://x/ctx.tar.gz",
		"scratch=dir:///x", "context=x", "=x", "x=", "x=ftp://y", "x=https://u:" + fuzzSecret + "@h/r.git?bogus=1",
		"x=https://u:" + fuzzSecret + "@h/r.git?ref=a&ref=b", "x=ssh://git@h/r.git#a?branch=b&tag=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		err := (&Config{BuildContexts: []string{spec}}).validateBuildContexts()
		if err == nil {
			return
		}
		if !strings.HasPrefix(err.Error(), "--build-context ") {
			t.Errorf("error %q does not name --build-context", err)
		}
	})
}

// FuzzParseFlags parses fuzzed command lines (arguments separated by NUL) with a build arg
// and a secret of known value added: no panic, no error or warning shows that value (unless
// the fuzzed arguments hold it too), and what is accepted passed Validate.
func FuzzParseFlags(f *testing.F) {
	for _, s := range []string{
		"--destination=reg.example/app:1",
		"--no-push\x00--snapshot-mode=redo\x00--compression=zstd\x00--log-format=json",
		"-d\x00r/a\x00--context=tar://stdin\x00--label=a=b\x00--secret=id=x,env=X\x00--ssh=default",
		"--no-push\x00--snapshotMode=time\x00--tarPath=/x.tar\x00--whitelist-var-run=false\x00-b\x00bucket",
		"--no-push\x00--label=nolabel", "--no-push\x00--secret=bogus", "--no-push\x00--build-context=x=ftp://y",
		"--no-push\x00--cache\x00--cache-repo=r/c", "positional", "--unknown", "--destination",
		"--no-push\x00--build-arg\x00A=" + fuzzSecret,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args := append([]string{"--build-arg=TOKEN=" + fuzzSecret, "--secret=id=tok,env=TOKEN"}, strings.Split(line, "\x00")...)
		c, err := ParseFlags(args)
		if strings.Contains(line, fuzzSecret) || strings.Contains(line, "kiln-fuzz") {
			return
		}
		if err != nil {
			if err.Error() == "" || strings.Contains(err.Error(), fuzzSecret) {
				t.Errorf("error %q", err)
			}
			return
		}
		for _, w := range c.Warnings {
			if strings.Contains(w, fuzzSecret) {
				t.Errorf("warning %q shows a build arg's value", w)
			}
		}
	})
}
