package cache

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Entry describes a cached result: what made it and from which inputs.
type Entry struct {
	Key       Key
	Parent    Key
	CreatedBy string    // the history entry of the instruction (its created_by)
	Created   time.Time // when the entry was written (for the TTL)
	Empty     bool      // the instruction changed no file: the entry has no layer
	Lineage   string    // the Dockerfile position it came from (see LineageOf)
	Inputs    []Input   // the named inputs of the key, for explaining a later miss
	// Source is where Get found the entry (SourceLocal, SourceRegistry, SourceLayout); it is
	// not stored.
	Source string
}

// Labels on a cache image's config; the inputs are JSON.
const (
	labelKey     = "dev.kiln.cache.key"
	labelParent  = "dev.kiln.cache.parent"
	labelEmpty   = "dev.kiln.cache.empty"
	labelLineage = "dev.kiln.cache.lineage"
	labelInputs  = "dev.kiln.cache.inputs"
)

// maxStoredFiles bounds how many per-file inputs an entry keeps; beyond it the files are kept
// as one aggregate digest, so a config stays small even for a huge COPY.
const maxStoredFiles = 1000

// configFile renders the entry as the config of its cache image.
func (e Entry) configFile() (*v1.ConfigFile, error) {
	inputs, err := json.Marshal(storedInputs(e.Inputs))
	if err != nil {
		return nil, err
	}
	labels := map[string]string{
		labelKey:     string(e.Key),
		labelParent:  string(e.Parent),
		labelLineage: e.Lineage,
		labelInputs:  string(inputs),
	}
	if e.Empty {
		labels[labelEmpty] = "true"
	}
	return &v1.ConfigFile{
		Created: v1.Time{Time: e.Created.UTC()},
		History: []v1.History{{CreatedBy: e.CreatedBy, Created: v1.Time{Time: e.Created.UTC()}, EmptyLayer: e.Empty}},
		RootFS:  v1.RootFS{Type: "layers"},
		Config:  v1.Config{Labels: labels},
		OS:      "linux",
	}, nil
}

// entryOf reads an entry back from a cache image's config.
func entryOf(cf *v1.ConfigFile) (Entry, error) {
	l := cf.Config.Labels
	if l[labelKey] == "" {
		return Entry{}, fmt.Errorf("not a cache entry: its config has no %s label", labelKey)
	}
	e := Entry{Key: Key(l[labelKey]), Parent: Key(l[labelParent]), Created: cf.Created.Time,
		Empty: l[labelEmpty] == "true", Lineage: l[labelLineage]}
	if len(cf.History) > 0 {
		e.CreatedBy = cf.History[0].CreatedBy
	}
	if s := l[labelInputs]; s != "" {
		if err := json.Unmarshal([]byte(s), &e.Inputs); err != nil {
			return Entry{}, fmt.Errorf("cache entry %s: bad %s label: %w", e.Key.Short(), labelInputs, err)
		}
	}
	return e, nil
}

// storedInputs is what an entry keeps of its inputs: the build args only as a digest (their
// values are often tokens, and an entry is readable by whoever can pull the cache), and the
// file inputs as one aggregate when there are too many.
func storedInputs(in []Input) []Input {
	var files []Input
	var out []Input
	for _, i := range in {
		switch {
		case i.isFile():
			files = append(files, i)
		case i.Name == InputArgs && !strings.HasPrefix(i.Value, "sha256:"):
			out = append(out, Digest(InputArgs, []byte(i.Value)))
		default:
			out = append(out, i)
		}
	}
	if len(files) <= maxStoredFiles {
		return append(out, files...)
	}
	b, _ := json.Marshal(files)
	return append(out, Digest(InputFiles, b))
}

// Explain names the first input that differs between a previous entry and the inputs of a
// key that missed: a source file added, removed or changed, then the instruction, args, env,
// config, and finally the parent (an earlier instruction or the base image changed).
func Explain(prev Entry, parent Key, inputs []Input) string {
	cur := storedInputs(inputs)
	old := map[string]string{}
	for _, i := range prev.Inputs {
		old[i.Name] = i.Value
	}
	now := map[string]string{}
	for _, i := range cur {
		now[i.Name] = i.Value
	}
	var changes []string
	for _, i := range cur {
		if !i.isFile() {
			continue
		}
		file := strings.TrimPrefix(i.Name, FilePrefix)
		v, ok := old[i.Name]
		switch {
		case !ok:
			changes = append(changes, file+" added")
		case v != i.Value:
			changes = append(changes, file+" changed"+fileChangeKind(v, i.Value))
		}
	}
	for _, i := range prev.Inputs {
		if _, ok := now[i.Name]; !ok && i.isFile() {
			changes = append(changes, strings.TrimPrefix(i.Name, FilePrefix)+" removed")
		}
	}
	if len(changes) > 0 {
		if len(changes) > 3 {
			changes = append(changes[:3], fmt.Sprintf("and %d more", len(changes)-3))
		}
		return strings.Join(changes, ", ")
	}
	for _, i := range cur {
		if i.isFile() {
			continue
		}
		if v, ok := old[i.Name]; !ok || v != i.Value {
			if i.Name == InputFiles {
				return "one or more source files changed"
			}
			return i.Name + " changed"
		}
	}
	if prev.Parent != parent {
		return "an earlier instruction or the base image changed (parent " + prev.Parent.Short() + " -> " + parent.Short() + ")"
	}
	return "inputs are equal to the previous entry's"
}

// fileChangeKind says whether a file's content or only its metadata changed.
func fileChangeKind(old, cur string) string {
	o, c := strings.Fields(old), strings.Fields(cur)
	if len(o) < 3 || len(c) < 3 {
		return ""
	}
	switch {
	case o[0] != c[0]:
		return " (type " + o[0] + " -> " + c[0] + ")"
	case o[1] != c[1]:
		return " (mode " + o[1] + " -> " + c[1] + ")"
	case o[2] != c[2]:
		return " (owner " + o[2] + " -> " + c[2] + ")"
	}
	return " (content)"
}
