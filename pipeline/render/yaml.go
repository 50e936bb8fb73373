package render

import (
	"bytes"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// kubeYAML marshals typed Kubernetes objects into one multi-document YAML file, after a header
// comment. Keys come out sorted (sigs.k8s.io/yaml goes through JSON), so the bytes depend only
// on the objects.
func kubeYAML(header string, objs ...runtime.Object) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(header)
	for i, obj := range objs {
		b, err := objectYAML(obj)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// objectYAML marshals one object, checking it says what it is and dropping the status that a
// typed object always carries (empty, or a Service's empty loadBalancer): it is the server's.
func objectYAML(obj runtime.Object) ([]byte, error) {
	gvk := obj.GetObjectKind().GroupVersionKind()
	if gvk.Kind == "" || gvk.Version == "" {
		return nil, fmt.Errorf("%T has no apiVersion or kind set", obj)
	}
	j, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("marshal %s: %w", gvk.Kind, err)
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		return nil, fmt.Errorf("marshal %s: %w", gvk.Kind, err)
	}
	delete(m, "status")
	return yaml.Marshal(m)
}

// comment turns lines into a YAML or shell comment block.
func comment(lines ...string) string {
	var b bytes.Buffer
	for _, l := range lines {
		if l == "" {
			b.WriteString("#\n")
			continue
		}
		b.WriteString("# " + l + "\n")
	}
	return b.String()
}
