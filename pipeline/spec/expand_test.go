package spec

import (
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestExpander(t *testing.T) {
	vars := map[string]string{"A": "a", "E": "", "B_1": "b"}
	for _, tc := range []struct{ in, want, missing string }{
		{"", "", ""},
		{"plain", "plain", ""},
		{"$A", "a", ""},
		{"${A}", "a", ""},
		{"x${A}y$A-$B_1.", "xaya-b.", ""},
		{"$A_1", "", "A_1"},
		{"$$", "$", ""},
		{"$$A", "$A", ""},
		{"$$$A", "$a", ""},
		{"$${A}", "${A}", ""},
		{"$", "$", ""},
		{"cost: 5$", "cost: 5$", ""},
		{"$1 $! $-", "$1 $! $-", ""},
		{"${A}}", "a}", ""},
		{"${E}", "", ""},
		{"${E:-d}", "d", ""},
		{"${U:-d}", "d", ""},
		{"${A:-d}", "a", ""},
		{"${U:-}", "", ""},
		{"${A:+alt}", "alt", ""},
		{"${E:+alt}", "", ""},
		{"${U:+alt}", "", ""},
		{"${U:-${A}}", "a", ""},
		{"${U:-x${A:+y}z}", "xyz", ""},
		{"${U:-{}", "{", ""},
		{"${U:-$${A}}", "${A}", ""},
		{"${A:-${MISSING}}", "a", ""}, // an unused default may refer to anything
		{"${U:-${MISSING}}", "", "MISSING"},
		{"${U}${U}$V", "", "U V"},
	} {
		e := &expander{lookup: Lookup(vars, nil)}
		got, err := e.expand(tc.in)
		if err != nil || got != tc.want || strings.Join(e.missing, " ") != tc.missing {
			t.Errorf("expand(%q) = %q, missing %q, %v; want %q, missing %q", tc.in, got, e.missing, err, tc.want, tc.missing)
		}
	}
}

func TestExpanderSyntaxErrors(t *testing.T) {
	for _, in := range []string{"${A", "x ${A:-${B}", "${}", "${1A}", "${A?x}", "${A:=x}", "${A-x}", "${A+x}", "${A B}", "${é}"} {
		e := &expander{lookup: Lookup(nil, nil)}
		if got, err := e.expand(in); err == nil {
			t.Errorf("expand(%q) = %q, want an error", in, got)
		}
	}
	// Errors hidden in unused defaults are found when checking (at Parse).
	e := &expander{lookup: Lookup(map[string]string{"A": "a"}, nil), all: true}
	if _, err := e.expand("${A:-${1}}"); err == nil {
		t.Error("a bad reference in an unused default was not reported")
	}
}

func TestLookup(t *testing.T) {
	env := func(name string) (string, bool) {
		v, ok := map[string]string{"A": "env", "B": "env"}[name]
		return v, ok
	}
	l := Lookup(map[string]string{"A": "flag", "C": ""}, env)
	for name, want := range map[string]string{"A": "flag", "B": "env", "C": ""} {
		if got, ok := l(name); !ok || got != want {
			t.Errorf("%s = %q, %v; want %q", name, got, ok, want)
		}
	}
	if _, ok := l("D"); ok {
		t.Error("D is set")
	}
	if _, ok := Lookup(nil, nil)("A"); ok {
		t.Error("A is set with no vars and no env")
	}
}

func TestVariables(t *testing.T) {
	p, err := Load("testdata/good/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"APP", "BASE_TAG", "BUILD_NUMBER", "NAMESPACE", "REGISTRY"}
	if got := p.Variables(); !reflect.DeepEqual(got, want) {
		t.Errorf("Variables() = %q, want %q", got, want)
	}
	p, err = Load("testdata/good/shell-command.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Variables(); !reflect.DeepEqual(got, []string{"BUILD_NUMBER"}) {
		t.Errorf("Variables() = %q: $$ escapes are not references", got)
	}
}

// TestExpandLeavesOriginal checks that Expand copies deeply and that reading a pipeline
// (Variables) from many goroutines is safe (go test -race).
func TestExpandLeavesOriginal(t *testing.T) {
	p, err := Load("testdata/good/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	before := p.clone()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { p.Variables() })
	}
	wg.Wait()
	x, err := p.Expand(Lookup(testVars(), nil))
	if err != nil {
		t.Fatal(err)
	}
	x.eachString(func(_ string, s *string, _ bool) { *s = "changed" })
	x.Lines["name"], *x.Deploy.Wait = 99, true
	if !reflect.DeepEqual(p, before) {
		t.Errorf("Expand or a change to its result changed the original:\n%+v\nwas\n%+v", p, before)
	}
}

// TestEachStringVisitsAll fills every string of a Pipeline by reflection and checks that
// eachString visits them all, so that no field escapes Expand.
func TestEachStringVisitsAll(t *testing.T) {
	for _, cmd := range []Command{{Shell: "orig"}, {Exec: []string{"orig", "orig"}}} {
		p := &Pipeline{}
		fill(reflect.ValueOf(p).Elem())
		p.File, p.Lines = "", nil
		p.Build.Command = cmd
		p.eachString(func(_ string, s *string, _ bool) { *s = "visited" })
		walkStrings(reflect.ValueOf(p).Elem(), "p", func(path, s string) {
			if s == "orig" {
				t.Errorf("%s is not visited by eachString", path)
			}
		})
	}
}

// fill sets every string reachable from v to "orig", making pointers, one-item slices and
// one-key maps on its way.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("orig")
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e)
		v.SetMapIndex(reflect.ValueOf("key"), e)
	}
}

// walkStrings calls f with every string value (not map keys) reachable from v.
func walkStrings(v reflect.Value, path string, f func(path, s string)) {
	switch v.Kind() {
	case reflect.String:
		f(path, v.String())
	case reflect.Pointer:
		if !v.IsNil() {
			walkStrings(v.Elem(), path, f)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			walkStrings(v.Field(i), path+"."+v.Type().Field(i).Name, f)
		}
	case reflect.Slice:
		for i := range v.Len() {
			walkStrings(v.Index(i), path+"[]", f)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			walkStrings(v.MapIndex(k), path+"."+k.String(), f)
		}
	}
}

// TestExpandWithoutLines expands a Pipeline made in Go: errors still name the file and key.
func TestExpandWithoutLines(t *testing.T) {
	p := &Pipeline{File: "made.yaml", Name: "app", Image: &Image{Destinations: []string{"${R}/a", "${R}/b"}}}
	_, err := p.Expand(nil)
	want := "made.yaml: image.destination[0]: ${R} is not set (give --var R=... or set it in the environment)\n" +
		"made.yaml: image.destination[1]: ${R} is not set (give --var R=... or set it in the environment)"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want\n%s", err, want)
	}
}

// TestExpanderNesting checks the bound on references within references, which keeps a
// hostile file from costing time quadratic in its length.
func TestExpanderNesting(t *testing.T) {
	nest := func(n int) string { return strings.Repeat("${U:-", n) + "x" + strings.Repeat("}", n) }
	e := &expander{lookup: Lookup(nil, nil)}
	if got, err := e.expand(nest(maxNesting - 1)); err != nil || got != "x" {
		t.Errorf("%d deep: %q, %v", maxNesting-1, got, err)
	}
	if _, err := e.expand(nest(maxNesting)); err == nil || !strings.Contains(err.Error(), "nest") {
		t.Errorf("%d deep: %v, want an error", maxNesting, err)
	}
}

// A flag that expands to nothing is dropped, so a file can pass a flag only when a variable is
// set; a destination that expands to nothing is still an error.
func TestExpandDropsEmptyFlags(t *testing.T) {
	p, err := Parse("p.yaml", []byte("name: x\nimage:\n  destination: r/x:1\n  flags:\n    - ${INSECURE:+--insecure-registry=$INSECURE}\n    - --reproducible\n"))
	if err != nil {
		t.Fatal(err)
	}
	for vars, want := range map[string][]string{
		"":           {"--reproducible"},
		"10.0.0.1:5": {"--insecure-registry=10.0.0.1:5", "--reproducible"},
	} {
		m := map[string]string{}
		if vars != "" {
			m["INSECURE"] = vars
		}
		q, err := p.Expand(Lookup(m, nil))
		if err != nil {
			t.Fatalf("INSECURE=%q: %v", vars, err)
		}
		if !reflect.DeepEqual(q.Image.Flags, want) {
			t.Errorf("INSECURE=%q: flags %q, want %q", vars, q.Image.Flags, want)
		}
	}
	p, err = Parse("p.yaml", []byte("name: x\nimage:\n  destination: ${D:-}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Expand(nil); err == nil || !strings.Contains(err.Error(), "p.yaml:3: image.destination") {
		t.Errorf("empty destination: %v, want an error naming p.yaml:3: image.destination", err)
	}
}

// TestExpandUnusedMalformed: a malformed reference is an error even in a default that goes
// unused, as Parse would report it, whatever the variables' values.
func TestExpandUnusedMalformed(t *testing.T) {
	p := &Pipeline{File: "made.yaml", Name: "app", Image: &Image{Destinations: []string{"r/a:${A:-${1}}"}}}
	_, err := p.Expand(Lookup(map[string]string{"A": "1"}, nil))
	if err == nil || !strings.Contains(err.Error(), "made.yaml: image.destination: ${1} is not a variable reference") {
		t.Errorf("got %v, want the malformed ${1} reported", err)
	}
}
