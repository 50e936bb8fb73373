package render

import (
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

func TestShellWord(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "''"},
		{"--cache=true", "--cache=true"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"${BUILD_NUMBER}", `"${BUILD_NUMBER}"`},
		{"--destination=${REGISTRY_USER}/app:${BUILD_NUMBER}", `"--destination=${REGISTRY_USER}/app:${BUILD_NUMBER}"`},
		{"$$HOME ${X} `id` \"q\" \\", "\"\\$HOME ${X} \\`id\\` \\\"q\\\" \\\\\""},
		{"$$HOME", `'$HOME'`},
		{"$X/${Y:-a b}${Z:+-z}", `"${X}/${Y:-a b}${Z:+-z}"`},
		{"${not valid}", `'${not valid}'`},
		{"*.txt", `'*.txt'`},
	} {
		if got := shellWord(tc.in); got != tc.want {
			t.Errorf("shellWord(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestShellWordRoundTrip has a real shell split the quoted words back: each must come out as
// one word, ${X} expanded from the environment and everything else literal.
func TestShellWordRoundTrip(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh on this machine")
	}
	words := []string{"", "plain", "two words", "it's", `back\slash`, "$$HOME", "`id`", `"dq"`,
		"*", "${X}", "pre-${X}-post $(id)", "tab\there", "new\nline", "${Y}${X}", "!bang",
		"$X", "${UNSET:-d e}", "${X:+alt $$HOME}", "${UNSET:+no}", "${UNSET:-${Y}}", "$$$$"}
	script := "printf '%s\\0' " + shellJoin(words)
	cmd := exec.Command(sh, "-c", script)
	cmd.Env = []string{"X=a b  *", "Y=$X", "HOME=/nowhere", "PATH=/usr/bin:/bin"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sh -c %q: %v", script, err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	want := make([]string, len(words))
	for i, w := range words {
		want[i] = strings.NewReplacer("$$", "$", "${X}", "a b  *", "${Y}", "$X", "$X", "a b  *",
			"${UNSET:-d e}", "d e", "${X:+alt $$HOME}", "alt $HOME", "${UNSET:+no}", "", "${UNSET:-${Y}}", "$X").Replace(w)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the shell split\n%s\ninto %q\nwant %q", script, got, want)
	}
}

func TestGroovyString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"echo ${BUILD_NUMBER}", `'echo ${BUILD_NUMBER}'`},
		{`it's a \ back`, `'it\'s a \\ back'`},
		{"a\nb'''c", `'''a` + "\n" + `b\'\'\'c'''`},
	} {
		if got := groovyString(tc.in); got != tc.want {
			t.Errorf("groovyString(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// kubeExpand is Kubernetes' documented expansion of command, args and env values: $(NAME)
// becomes NAME's value when env has NAME and stays as written otherwise; $$ becomes $.
func kubeExpand(s string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+end]
			if v, ok := env[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+end+1])
			}
			i += end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

func TestKubeValue(t *testing.T) {
	known := map[string]string{"SET": "v", "EMPTY": ""}
	env := map[string]string{"BUILD_NUMBER": "7", "REGISTRY_USER": "kiln", "SET": "v", "UNSET": "u"}
	for _, tc := range []struct{ in, want, expanded string }{
		{"--destination=${REGISTRY_USER}/app:${BUILD_NUMBER}", "--destination=$(REGISTRY_USER)/app:$(BUILD_NUMBER)", "--destination=kiln/app:7"},
		{"$REGISTRY_USER/app", "$(REGISTRY_USER)/app", "kiln/app"},
		{"echo $(date) $$HOME $$$$ ${BUILD_NUMBER}", "echo $$(date) $HOME $$$ $(BUILD_NUMBER)", "echo $(date) $HOME $$ 7"},
		{"cost: $$${BUILD_NUMBER}", "cost: $$$(BUILD_NUMBER)", "cost: $7"},
		{"$$(BUILD_NUMBER)", "$$(BUILD_NUMBER)", "$(BUILD_NUMBER)"},
		{"tag-${SET:-dev}", "tag-v", "tag-v"},
		{"tag-${UNSET:-dev-${BUILD_NUMBER}}", "tag-dev-$(BUILD_NUMBER)", "tag-dev-7"},
		{"tag-${EMPTY:-dev}", "tag-dev", "tag-dev"},
		{"x${SET:+-on}", "x-on", "x-on"},
		{"x${UNSET:+-on}", "x", "x"},
		{"${not valid} $ end$", "${not valid} $ end$", "${not valid} $ end$"},
	} {
		got := kubeValue(tc.in, known)
		if got != tc.want {
			t.Errorf("kubeValue(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if e := kubeExpand(got, env); e != tc.expanded {
			t.Errorf("Kubernetes expands kubeValue(%q) = %q to %q, want %q", tc.in, got, e, tc.expanded)
		}
	}
}

func TestShellLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"go build -o out/hello .", "go build -o out/hello ."},
		{"echo $$HOME ${X} $X ${Y:-$$PWD} $$$$", "echo $HOME ${X} ${X} ${Y:-$PWD} $$"},
	} {
		if got := shellLine(tc.in); got != tc.want {
			t.Errorf("shellLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
