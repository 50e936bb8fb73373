package main

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestPipelineParseVars(t *testing.T) {
	for _, tc := range []struct {
		in      []string
		want    map[string]string
		wantErr string
	}{
		{nil, map[string]string{}, ""},
		{[]string{"A=1", "B=x=y", "C="}, map[string]string{"A": "1", "B": "x=y", "C": ""}, ""},
		{[]string{"A=1", "A=2"}, map[string]string{"A": "2"}, ""}, // the last one wins, as in a shell
		{[]string{"A=1", "NOVALUE"}, nil, `--var "NOVALUE": must be NAME=VALUE`},
		{[]string{"=value"}, nil, `--var "=value": must be NAME=VALUE`},
	} {
		got, err := parseVars(tc.in)
		switch {
		case tc.wantErr != "":
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("parseVars(%q) error %v, want %q", tc.in, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("parseVars(%q): %v", tc.in, err)
		case !maps.Equal(got, tc.want):
			t.Errorf("parseVars(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestPipelineSplitList(t *testing.T) {
	for _, tc := range []struct {
		in, want []string
	}{
		{nil, nil},
		{[]string{""}, nil},
		{[]string{"build"}, []string{"build"}},
		{[]string{"build,image", " deploy "}, []string{"build", "image", "deploy"}},
		{[]string{"a,,b,", " , "}, []string{"a", "b"}},
	} {
		if got := splitList(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("splitList(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestPipelineParseFlags(t *testing.T) {
	newSet := func() (*pflag.FlagSet, *bytes.Buffer, *string) {
		fs := pflag.NewFlagSet("pipeline test", pflag.ContinueOnError)
		var out bytes.Buffer
		fs.SetOutput(&out)
		name := fs.String("name", "", "A name")
		fs.String("zeta", "", "Declared before alpha")
		fs.String("alpha", "", "Declared after zeta")
		return fs, &out, name
	}
	fs, out, name := newSet()
	if code, done := parseFlags(fs, []string{"--name", "x"}); done || code != 0 || *name != "x" || out.Len() != 0 {
		t.Errorf("good flags: code %d, done %v, name %q, output %q", code, done, *name, out)
	}
	fs, out, _ = newSet()
	if code, done := parseFlags(fs, []string{"--help"}); !done || code != 0 {
		t.Errorf("--help: code %d, done %v", code, done)
	}
	if usage := out.String(); strings.Index(usage, "--zeta") > strings.Index(usage, "--alpha") {
		t.Errorf("--help sorts the flags; want them in declaration order:\n%s", usage)
	}
	fs, out, _ = newSet()
	if code, done := parseFlags(fs, []string{"--nmae", "x"}); !done || code != 2 {
		t.Errorf("unknown flag: code %d, done %v", code, done)
	}
	if got := out.String(); !strings.HasPrefix(got, "Error: unknown flag: --nmae\nUsage of pipeline test:\n") || !strings.Contains(got, "--name string") {
		t.Errorf("unknown flag output:\n%s", got)
	}
	fs, out, _ = newSet()
	if code, done := parseFlags(fs, []string{"--name", "x", "extra"}); !done || code != 2 {
		t.Errorf("argument: code %d, done %v", code, done)
	}
	if got := out.String(); !strings.HasPrefix(got, `Error: unexpected argument "extra"`) {
		t.Errorf("argument output:\n%s", got)
	}
}
