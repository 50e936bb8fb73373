// Command pipeline runs an app's CI/CD without a daemon, and renders it for CI systems:
//
//	pipeline run -f kiln-pipeline.yaml --build-number 7 [--stage build|image|deploy] [--kubeconfig PATH] [--wait=false]
//	pipeline render -f kiln-pipeline.yaml -o DIR [--for jenkins|gitlab|job]
//	pipeline checkout --git URL [--ref REF] --dir DIR
//	pipeline schema
//
// Exit codes tell which stage failed: 2 bad flags or pipeline file, 3 build, 4 image, 5 deploy.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `Usage:
  pipeline run -f FILE --build-number N [--var NAME=VALUE]... [--stage build|image|deploy]
               [--kubeconfig PATH] [--namespace NS] [--wait=false] [--workspace DIR]
  pipeline render -f FILE -o DIR [--for jenkins|gitlab|job]
  pipeline checkout --git URL [--ref REF] --dir DIR
  pipeline schema      print the pipeline file's JSON schema
  pipeline version

Run "pipeline COMMAND --help" for a command's flags.
`

// run is the whole command; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return runCmd(args[1:], stdout, stderr)
	case "render":
		return renderCmd(args[1:], stdout, stderr)
	case "checkout":
		return checkoutCmd(args[1:], stdout, stderr)
	case "schema":
		return schemaCmd(stdout)
	case "version":
		fmt.Fprintf(stdout, "Kiln pipeline version: %s\n", version())
		return 0
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "Error: unknown command %q\n%s", args[0], usage)
	return 2
}

// version is the module version this binary was built from ("devel" for a local build).
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok || info.Main.Version == "" || info.Main.Version == "(devel)" {
		return "devel"
	}
	return info.Main.Version
}
