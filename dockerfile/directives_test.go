package dockerfile

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseDirectives(t *testing.T) {
	d := mustParse(t, "#!/usr/bin/env docker-build\n# syntax=docker/dockerfile:1.7\n# check=skip=JSONArgsRecommended,StageNameCasing;error=true\n\nFROM scratch\n# syntax=ignored/after-the-top\n")
	want := []Directive{
		{Name: "syntax", Value: "docker/dockerfile:1.7", Line: 2},
		{Name: "check", Value: "skip=JSONArgsRecommended,StageNameCasing;error=true", Line: 3},
	}
	if !reflect.DeepEqual(d.Directives, want) {
		t.Fatalf("directives %+v, want %+v", d.Directives, want)
	}
	if s, ok := d.Directive("syntax"); !ok || s.Value != "docker/dockerfile:1.7" {
		t.Errorf("Directive(syntax) = %+v %v", s, ok)
	}
	if _, ok := mustParse(t, "FROM scratch\n").Directive("syntax"); ok {
		t.Error("a Dockerfile without directives has a syntax directive")
	}
}

func TestParseCheck(t *testing.T) {
	o, err := ParseCheck("skip=A, B;error=true;experimental=all")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o, CheckOptions{Skip: []string{"A", "B"}, Experimental: []string{"all"}, Error: true}) {
		t.Errorf("ParseCheck = %+v", o)
	}
	for _, bad := range []string{"skip", "error=maybe", "color=red"} {
		if _, err := ParseCheck(bad); err == nil {
			t.Errorf("ParseCheck(%q) accepted it", bad)
		}
	}
	// A bad check directive fails the parse, naming its line, as BuildKit does.
	_, err = Parse(Source{Name: "Dockerfile", Data: []byte("# syntax=docker/dockerfile:1\n# check=error=sometimes\nFROM scratch\n")})
	if err == nil || !strings.Contains(err.Error(), "Dockerfile:2:") {
		t.Errorf("bad check directive: %v, want an error naming line 2", err)
	}
}

// A `# check=` comment right above an instruction made BuildKit's instruction parser
// dereference a nil linter; parsing, expanding a RUN and ONBUILD triggers must survive it.
func TestCheckCommentAboveInstructions(t *testing.T) {
	d := mustParse(t, "# check=error=true\nFROM scratch\n# check=skip=all\nRUN --mount=type=cache,target=/c true\n")
	if _, err := d.Expand(d.Stages[0].Commands[0], NewScope(nil, nil, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := OnBuildCommands([]string{"# check=skip=all\nRUN true"}, "base"); err != nil {
		t.Fatal(err)
	}
}
