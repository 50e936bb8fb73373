package main

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"

	"github.com/kilnbuild/kiln/pipeline/render"
	"github.com/kilnbuild/kiln/pipeline/spec"
	"github.com/spf13/pflag"
)

// renderCmd writes what runs the pipeline in a cluster: CI files, a Job, RBAC.
func renderCmd(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("pipeline render", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.StringP("file", "f", spec.DefaultFileName, "Pipeline file")
	out := fs.StringP("output", "o", "", "Folder the files are written to (created if missing)")
	targets := fs.StringArray("for", nil, "What to render for: jenkins, gitlab, job (repeatable or comma-separated; default all)")
	vars := fs.StringArray("var", nil, "NAME=VALUE decided at render time (repeatable): names, images and defaults no CI system expands")
	buildNumber := fs.String("build-number", "", "Build number of the rendered Job (default: generateName and a ${BUILD_NUMBER} placeholder)")
	pathInRepo := fs.String("path-in-repo", "", "The pipeline file's path inside its repository (default: -f when relative)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *out == "" {
		fmt.Fprintln(stderr, "Error: render needs -o DIR")
		return 2
	}
	p, err := spec.Load(*file)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 2
	}
	values, err := parseVars(*vars)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 2
	}
	files, err := render.RenderWith(p, render.Options{
		Targets: splitList(*targets), Vars: values, BuildNumber: *buildNumber, PipelineFile: *pathInRepo,
	})
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 2
	}
	if err := render.Write(*out, files); err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(*out, n))
	}
	return 0
}
