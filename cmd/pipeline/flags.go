package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/pflag"
)

// parseFlags parses args; done reports that the command ends here with code (help or an error).
func parseFlags(fs *pflag.FlagSet, args []string) (code int, done bool) {
	fs.SortFlags = false
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0, true
		}
		fmt.Fprintf(fs.Output(), "Error: %v\nUsage of %s:\n%s", err, fs.Name(), fs.FlagUsages())
		return 2, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "Error: unexpected argument %q\nUsage of %s:\n%s", fs.Arg(0), fs.Name(), fs.FlagUsages())
		return 2, true
	}
	return 0, false
}

// splitList accepts "a,b" as well as a repeated flag.
func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// parseVars turns --var NAME=VALUE flags into a map, naming the flag at fault.
func parseVars(list []string) (map[string]string, error) {
	vars := map[string]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--var %q: must be NAME=VALUE", kv)
		}
		vars[k] = v
	}
	return vars, nil
}
