package main

import (
	"io"

	"github.com/kilnbuild/kiln/pipeline/spec"
)

// schemaCmd prints the pipeline file's JSON schema, for editors (yaml-language-server:
// "# yaml-language-server: $schema=kiln-pipeline.schema.json").
func schemaCmd(stdout io.Writer) int {
	if _, err := stdout.Write(spec.Schema); err != nil {
		return 1
	}
	return 0
}
