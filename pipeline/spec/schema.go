package spec

import _ "embed"

// Schema is the JSON schema (draft 2020-12) of the pipeline file, for editors: with the
// YAML language server, a first line "# yaml-language-server: $schema=PATH" completes and checks
// the file. Parse checks more than the schema can (image references, ${VAR} syntax, name
// lengths), so a file the schema accepts may still have errors.
//
//go:embed schema.json
var Schema []byte
