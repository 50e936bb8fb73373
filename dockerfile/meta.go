package dockerfile

import (
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Meta computes the global scope: the automatic platform ARGs (TARGETPLATFORM,
// TARGETOS, TARGETARCH, TARGETVARIANT, BUILDPLATFORM, BUILDOS, BUILDARCH,
// BUILDVARIANT) from target and build (zero value = this machine), then each
// ARG before the first FROM in order: a build arg's value if given, else its
// default expanded with the variables defined so far. A meta ARG with neither
// stays undefined.
func (d *Dockerfile) Meta(args BuildArgs, target, build Platform) (*Vars, error) {
	vars := &Vars{vals: map[string]string{}}
	for _, kv := range platformArgs(target, build) {
		vars.set(kv[0], kv[1])
	}
	lex := shell.NewLex(d.Escape)
	for i := range d.MetaArgs {
		cmd := &d.MetaArgs[i]
		for _, kv := range cmd.Args {
			if v, ok := args.Value(kv.Key); ok {
				vars.set(kv.Key, v)
				continue
			}
			if kv.Value == nil {
				continue
			}
			v, _, err := lex.ProcessWord(*kv.Value, vars)
			if err != nil {
				return nil, at(d.Name, lineOf(cmd), err)
			}
			vars.set(kv.Key, v)
		}
	}
	return vars, nil
}
