package spec

import (
	"errors"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no input makes Parse, Expand or Variables panic, that every error
// names the file, and that what Parse accepts holds what the types promise.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"good", "bad"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
		for _, file := range files {
			f.Add(readFile(f, file))
		}
	}
	const file = "fuzz/kiln-pipeline.yaml"
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(file, data)
		if err != nil {
			checkNamesFile(t, err, file)
			return
		}
		checkParsed(t, p)
		p.Variables()
		x, err := p.Expand(func(name string) (string, bool) { return "x", len(name)%2 == 0 })
		if err != nil {
			checkNamesFile(t, err, file)
		} else if x.File != file {
			t.Errorf("expanded File %q", x.File)
		}
	})
}

// checkParsed checks what a parsed pipeline promises: a name, a stage, and the required keys
// of each stage.
func checkParsed(t *testing.T, p *Pipeline) {
	var bad []error
	if p.Name == "" || (p.Build == nil && p.Image == nil && p.Deploy == nil) {
		bad = append(bad, errors.New("no name or no stage"))
	}
	if b := p.Build; b != nil && (b.Image == "" || (b.Command.Shell == "") == (b.Command.Exec == nil)) {
		bad = append(bad, errors.New("build without image, or not exactly one form of command"))
	}
	if p.Image != nil && len(p.Image.Destinations) == 0 {
		bad = append(bad, errors.New("image without destinations"))
	}
	if p.Deploy != nil && len(p.Deploy.Manifests) == 0 {
		bad = append(bad, errors.New("deploy without manifests"))
	}
	if p.Lines["name"] == 0 {
		bad = append(bad, errors.New("no line for name"))
	}
	if err := errors.Join(bad...); err != nil {
		t.Errorf("Parse accepted %+v: %v", p, err)
	}
}
