package dockerfile

import (
	"fmt"
	"os"
)

// Source is a Dockerfile's bytes and the name used in errors (usually its path).
type Source struct {
	Name string
	Data []byte
}

// FromFile reads the Dockerfile at path; the path becomes the Source name.
func FromFile(path string) (Source, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		// os errors already carry "open <path>: <reason>".
		return Source{}, fmt.Errorf("dockerfile: %w", err)
	}
	return Source{Name: path, Data: data}, nil
}
