package deploystage

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/kilnbuild/kiln/pipeline/spec"
)

// Object is one Kubernetes object of the manifests, after replacements, and where it was written.
type Object struct {
	*unstructured.Unstructured
	Source Source
}

// Source is where an object is written.
type Source struct {
	File     string // as named in the pipeline file (a directory entry joined to it)
	Line     int    // first line of the object's document
	Document int    // 1-based, counting the file's non-empty documents
	Item     int    // 1-based index in a List's items; 0 when the object is not in a List
}

func (s Source) String() string {
	if s.Item > 0 {
		return fmt.Sprintf("%s:%d (document %d, item %d)", s.File, s.Line, s.Document, s.Item)
	}
	return fmt.Sprintf("%s:%d (document %d)", s.File, s.Line, s.Document)
}

// ReadManifests reads d.Manifests (relative to baseDir; a directory stands for its *.yaml, *.yml
// and *.json files), applies d.Replacements to their text and decodes every object of every
// YAML document, items of List kinds included. A replacement key found in no manifest is an
// error: it is almost always a typo in the pipeline file or the manifest.
func ReadManifests(baseDir string, d *spec.Deploy) ([]Object, error) {
	if d == nil || len(d.Manifests) == 0 {
		return nil, errors.New("deploy.manifests: no manifest files given")
	}
	r, err := newReplacer(d.Replacements)
	if err != nil {
		return nil, err
	}
	files, err := manifestFiles(baseDir, d.Manifests)
	if err != nil {
		return nil, err
	}
	var objs []Object
	for _, f := range files {
		data, err := os.ReadFile(f.path)
		if err != nil {
			return nil, fmt.Errorf("deploy.manifests: %w", err)
		}
		o, err := decodeFile(f.name, r.replace(string(data)))
		if err != nil {
			return nil, err
		}
		objs = append(objs, o...)
	}
	if err := r.unused(files); err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("deploy.manifests: %s hold no objects", strings.Join(d.Manifests, ", "))
	}
	return objs, nil
}

type manifestFile struct{ name, path string }

// manifestFiles resolves the manifest entries; a directory expands to its YAML and JSON files,
// sorted, as kubectl apply -f DIR does (not recursively).
func manifestFiles(baseDir string, entries []string) ([]manifestFile, error) {
	var files []manifestFile
	for i, name := range entries {
		if name == "" {
			return nil, fmt.Errorf("deploy.manifests[%d]: empty file name", i)
		}
		path := name
		if !filepath.IsAbs(path) {
			path = filepath.Join(baseDir, name)
		}
		st, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("deploy.manifests[%d]: %w", i, err)
		}
		if !st.IsDir() {
			files = append(files, manifestFile{name, path})
			continue
		}
		des, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("deploy.manifests[%d]: %w", i, err)
		}
		n := len(files)
		for _, de := range des {
			switch filepath.Ext(de.Name()) {
			case ".yaml", ".yml", ".json":
				if !de.IsDir() {
					files = append(files, manifestFile{filepath.Join(name, de.Name()), filepath.Join(path, de.Name())})
				}
			}
		}
		if len(files) == n {
			return nil, fmt.Errorf("deploy.manifests[%d]: directory %s has no .yaml, .yml or .json files", i, path)
		}
	}
	return files, nil
}

// replacer substitutes literal text. At each position the longest matching key wins, and text
// is scanned once: a replacement value is never substituted again.
type replacer struct {
	keys   []string
	values map[string]string
	hits   map[string]int
}

func newReplacer(m map[string]string) (*replacer, error) {
	r := &replacer{values: m, hits: map[string]int{}}
	for k := range m {
		if k == "" {
			return nil, errors.New("deploy.replacements: empty key")
		}
		r.keys = append(r.keys, k)
	}
	sort.Slice(r.keys, func(i, j int) bool {
		if len(r.keys[i]) != len(r.keys[j]) {
			return len(r.keys[i]) > len(r.keys[j])
		}
		return r.keys[i] < r.keys[j]
	})
	return r, nil
}

func (r *replacer) replace(s string) string {
	if len(r.keys) == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		k := r.match(s[i:])
		if k == "" {
			b.WriteByte(s[i])
			i++
			continue
		}
		b.WriteString(r.values[k])
		r.hits[k]++
		i += len(k)
	}
	return b.String()
}

func (r *replacer) match(s string) string {
	for _, k := range r.keys {
		if strings.HasPrefix(s, k) {
			return k
		}
	}
	return ""
}

func (r *replacer) unused(files []manifestFile) error {
	var missing []string
	for _, k := range r.keys {
		if r.hits[k] == 0 {
			missing = append(missing, strconv.Quote(k))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	sort.Strings(missing)
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.name
	}
	return fmt.Errorf("deploy.replacements: %s found in no manifest (%s)",
		strings.Join(missing, ", "), strings.Join(names, ", "))
}

// document is one YAML document of a file and the line it starts on.
type document struct {
	line int
	text string
}

// splitDocuments splits a multi-document YAML stream at "---" and "..." lines.
func splitDocuments(name, data string) ([]document, error) {
	var docs []document
	var cur strings.Builder
	start := 1
	lines := strings.SplitAfter(data, "\n")
	for i, l := range lines {
		marker := strings.TrimRight(l, "\r\n")
		isSep := false
		switch {
		case marker == "...":
			isSep = true
		case strings.HasPrefix(marker, "---") && (len(marker) == 3 || marker[3] == ' ' || marker[3] == '\t'):
			rest := strings.TrimSpace(marker[3:])
			if rest != "" && !strings.HasPrefix(rest, "#") {
				return nil, fmt.Errorf("%s:%d: content after the document marker \"---\" is not supported; start it on the next line", name, i+1)
			}
			isSep = true
		}
		if !isSep {
			cur.WriteString(l)
			continue
		}
		docs = append(docs, document{start, cur.String()})
		cur.Reset()
		start = i + 2
	}
	return append(docs, document{start, cur.String()}), nil
}

// leadingComments counts the blank and comment lines a document starts with, so that its
// Source names the line of its first key.
func leadingComments(text string) int {
	n := 0
	for _, l := range strings.SplitAfter(text, "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			break
		}
		n++
	}
	return n
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// decodeFile decodes every non-empty document of a manifest file.
func decodeFile(name, data string) ([]Object, error) {
	docs, err := splitDocuments(name, data)
	if err != nil {
		return nil, err
	}
	var objs []Object
	n := 0
	for _, d := range docs {
		js, err := yaml.YAMLToJSONStrict([]byte(d.text))
		if err != nil {
			// YAML errors count lines from the document's start; make them the file's.
			msg := yamlLine.ReplaceAllStringFunc(err.Error(), func(s string) string {
				l, _ := strconv.Atoi(strings.TrimPrefix(s, "line "))
				return "line " + strconv.Itoa(l+d.line-1)
			})
			return nil, fmt.Errorf("%s, document at line %d: %s", name, d.line, msg)
		}
		if string(js) == "null" {
			continue // only comments or blank
		}
		n++
		src := Source{File: name, Line: d.line + leadingComments(d.text), Document: n}
		o, err := decodeDocument(js, src)
		if err != nil {
			return nil, err
		}
		objs = append(objs, o...)
	}
	return objs, nil
}

// decodeDocument decodes one JSON document into its objects (a List's items, or itself).
func decodeDocument(js []byte, src Source) ([]Object, error) {
	if js[0] != '{' {
		return nil, fmt.Errorf("%s: not a Kubernetes object (a YAML mapping with apiVersion and kind)", src)
	}
	// Name a missing apiVersion or kind plainly, before the decoder does it with the whole JSON.
	top := &unstructured.Unstructured{}
	if err := json.Unmarshal(js, &top.Object); err != nil {
		return nil, fmt.Errorf("%s: %v", src, err)
	}
	if top.GetAPIVersion() == "" || top.GetKind() == "" {
		return nil, checkObject(top, src)
	}
	obj, _, err := unstructured.UnstructuredJSONScheme.Decode(js, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", src, err)
	}
	switch o := obj.(type) {
	case *unstructured.Unstructured:
		if err := checkObject(o, src); err != nil {
			return nil, err
		}
		return []Object{{o, src}}, nil
	case *unstructured.UnstructuredList:
		objs := make([]Object, 0, len(o.Items))
		for i := range o.Items {
			s := src
			s.Item = i + 1
			if err := checkObject(&o.Items[i], s); err != nil {
				return nil, err
			}
			objs = append(objs, Object{&o.Items[i], s})
		}
		return objs, nil
	}
	return nil, fmt.Errorf("%s: unexpected object %T", src, obj)
}

// checkObject rejects what cannot be applied, before anything reaches the server.
func checkObject(u *unstructured.Unstructured, src Source) error {
	switch {
	case u.GetAPIVersion() == "":
		return fmt.Errorf("%s: object has no apiVersion", src)
	case u.GetKind() == "":
		return fmt.Errorf("%s: object has no kind", src)
	case u.GetName() == "" && u.GetGenerateName() != "":
		return fmt.Errorf("%s: %s has generateName but no name; server-side apply needs metadata.name", src, u.GetKind())
	case u.GetName() == "":
		return fmt.Errorf("%s: %s has no metadata.name", src, u.GetKind())
	}
	return nil
}
