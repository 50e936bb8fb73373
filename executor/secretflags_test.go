package executor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSecretFlag(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tok")
	if err := os.WriteFile(file, []byte("file-value"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TOKEN": "env-value", "npmrc": "named-by-id"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		spec, wantValue, wantFile string
	}{
		{"id=a,src=" + file, "", file},
		{"id=a,source=" + file, "", file},
		{"id=a,env=TOKEN", "env-value", ""},
		{"id=a,type=env,src=TOKEN", "env-value", ""},
		{"type=file,id=a,src=" + file, "", file},
		{"id=npmrc", "named-by-id", ""}, // neither src nor env: the variable named by the id
	}
	for _, tt := range tests {
		f, err := parseSecretFlag(tt.spec)
		if err != nil {
			t.Fatalf("%s: %v", tt.spec, err)
		}
		s, err := f.secret(lookup)
		if err != nil {
			t.Fatalf("%s: %v", tt.spec, err)
		}
		if string(s.Value) != tt.wantValue || s.File != tt.wantFile {
			t.Errorf("%s: got value %q file %q", tt.spec, s.Value, s.File)
		}
	}
	for spec, want := range map[string]string{
		"src=" + file:           "id= is missing",
		"id=a,color=red":        `unknown key "color"`,
		"id=a,type=vault":       "type must be file or env",
		"id=a,noequals":         "must be key=value",
		"id=a,env=UNSET":        "environment variable UNSET is not set",
		"id=a,src=/nonexistent": "no such file",
	} {
		f, err := parseSecretFlag(spec)
		if err == nil {
			_, err = f.secret(lookup)
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: want an error containing %q, got %v", spec, want, err)
		}
		if err != nil && strings.Contains(err.Error(), "env-value") {
			t.Errorf("%s: the error shows a secret: %v", spec, err)
		}
	}
}

func TestParseSSHFlag(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	key1, key2 := filepath.Join(dir, "k1"), filepath.Join(dir, "k2")
	for _, p := range []string{sock, key1, key2} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	lookup := func(k string) (string, bool) {
		if k == "SSH_AUTH_SOCK" {
			return sock, true
		}
		return "", false
	}
	for spec, want := range map[string][]string{
		"default":                   {sock},
		"gh":                        {sock},
		"gh=" + sock:                {sock},
		"keys=" + key1 + "," + key2: {key1, key2},
	} {
		a, err := parseSSHFlag(spec, lookup)
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		if strings.Join(a.Paths, " ") != strings.Join(want, " ") {
			t.Errorf("%s: paths %v, want %v", spec, a.Paths, want)
		}
	}
	if _, err := parseSSHFlag("default", func(string) (string, bool) { return "", false }); err == nil ||
		!strings.Contains(err.Error(), "SSH_AUTH_SOCK is not set") {
		t.Errorf("default without an agent: %v", err)
	}
	if _, err := parseSSHFlag("x=/nonexistent", lookup); err == nil {
		t.Error("a missing socket was accepted")
	}
}

func TestSecretFlagSyntaxIsValidated(t *testing.T) {
	_, err := ParseFlags([]string{"--no-push", "--secret", "src=/x"})
	if err == nil || !strings.Contains(err.Error(), "--secret src=/x: id= is missing") {
		t.Fatalf("want the --secret error, got %v", err)
	}
}
