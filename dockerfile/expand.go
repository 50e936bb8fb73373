package dockerfile

import (
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Expand returns a copy of cmd with its words expanded in scope s; cmd itself
// is left untouched, so a parsed Dockerfile can serve several builds.
//
// RUN, CMD and ENTRYPOINT command lines are not expanded (the shell does
// that), nor are SHELL, HEALTHCHECK, MAINTAINER and ONBUILD, as in Docker;
// a RUN's --mount options are. For ARG, each name and default is expanded in
// s plus the ARGs before it in the same instruction (expanding names is
// Kaniko's rule, which Dockerfiles written for it use: `ARG ${src}=x`); a
// default whose key was given as a build arg is not expanded (it is unused,
// so errors in it don't count). Heredoc sources of COPY/ADD are expanded
// unless the heredoc word is quoted; a COPY/ADD source that expands to
// nothing is an error (an empty path would otherwise name the whole context).
// Errors name file:line.
func (d *Dockerfile) Expand(cmd instructions.Command, s *Scope) (instructions.Command, error) {
	out, err := d.expand(cmd, s)
	if err != nil {
		return nil, at(d.Name, lineOf(cmd), fmt.Errorf("%s: %w", strings.ToUpper(cmd.Name()), plainError(err)))
	}
	return out, nil
}

func (d *Dockerfile) expand(cmd instructions.Command, s *Scope) (instructions.Command, error) {
	lex := shell.NewLex(d.Escape)
	word := func(w string) (string, error) {
		r, _, err := lex.ProcessWord(w, s)
		return r, err
	}
	// Raw expansion keeps quotes and backslashes: it is for file contents.
	raw := func(w string) (string, error) {
		l := shell.NewLex('\\')
		l.SkipProcessQuotes = true
		r, _, err := l.ProcessWord(w, s)
		return r, err
	}
	switch c := cmd.(type) {
	case *instructions.EnvCommand:
		cp := *c
		cp.Env = append(instructions.KeyValuePairs(nil), c.Env...)
		return &cp, cp.Expand(word)
	case *instructions.LabelCommand:
		cp := *c
		cp.Labels = append(instructions.KeyValuePairs(nil), c.Labels...)
		return &cp, cp.Expand(word)
	case *instructions.CopyCommand:
		cp := *c
		cp.SourcesAndDest = copySources(c.SourcesAndDest)
		cp.ExcludePatterns = append([]string(nil), c.ExcludePatterns...)
		if err := cp.Expand(word); err != nil {
			return nil, err
		}
		if err := noEmptySource(c.SourcePaths, cp.SourcePaths); err != nil {
			return nil, err
		}
		return &cp, cp.ExpandRaw(raw)
	case *instructions.AddCommand:
		cp := *c
		cp.SourcesAndDest = copySources(c.SourcesAndDest)
		cp.ExcludePatterns = append([]string(nil), c.ExcludePatterns...)
		if err := cp.Expand(word); err != nil {
			return nil, err
		}
		if err := noEmptySource(c.SourcePaths, cp.SourcePaths); err != nil {
			return nil, err
		}
		return &cp, cp.ExpandRaw(raw)
	case *instructions.WorkdirCommand:
		cp := *c
		return &cp, cp.Expand(word)
	case *instructions.UserCommand:
		cp := *c
		return &cp, cp.Expand(word)
	case *instructions.StopSignalCommand:
		cp := *c
		return &cp, cp.Expand(word)
	case *instructions.VolumeCommand:
		cp := *c
		cp.Volumes = append([]string(nil), c.Volumes...)
		return &cp, cp.Expand(word)
	case *instructions.ExposeCommand:
		// BuildKit's ExposeCommand has no Expand; Docker splits each
		// expanded word, so "EXPOSE $PORTS" may yield several ports.
		cp := *c
		cp.Ports = nil
		for _, p := range c.Ports {
			words, err := lex.ProcessWords(p, s)
			if err != nil {
				return nil, err
			}
			cp.Ports = append(cp.Ports, words...)
		}
		return &cp, nil
	case *instructions.ArgCommand:
		return d.expandArg(c, s, lex)
	case *instructions.RunCommand:
		cp, err := d.freshRun(c)
		if err != nil {
			return nil, err
		}
		return cp, cp.Expand(word)
	case *instructions.CmdCommand:
		cp := *c
		return &cp, nil
	case *instructions.EntrypointCommand:
		cp := *c
		return &cp, nil
	case *instructions.ShellCommand:
		cp := *c
		return &cp, nil
	case *instructions.HealthCheckCommand:
		cp := *c
		return &cp, nil
	case *instructions.MaintainerCommand:
		cp := *c
		return &cp, nil
	case *instructions.OnbuildCommand:
		cp := *c
		return &cp, nil
	}
	return nil, fmt.Errorf("cannot expand instruction of type %T", cmd)
}

// copySources copies the slices Expand rewrites in place.
func copySources(s instructions.SourcesAndDest) instructions.SourcesAndDest {
	s.SourcePaths = append([]string(nil), s.SourcePaths...)
	s.SourceContents = append([]instructions.SourceContent(nil), s.SourceContents...)
	return s
}

// noEmptySource rejects a source that expanded to the empty string, naming it as written.
func noEmptySource(written, expanded []string) error {
	for i, p := range expanded {
		if p == "" {
			return fmt.Errorf("source %q expands to an empty path", written[i])
		}
	}
	return nil
}

// expandArg expands ARG names and defaults left to right, each seeing the ones before.
func (d *Dockerfile) expandArg(c *instructions.ArgCommand, s *Scope, lex *shell.Lex) (instructions.Command, error) {
	cp := *c
	cp.Args = append([]instructions.KeyValuePairOptional(nil), c.Args...)
	tmp := s.Clone()
	for i, kv := range cp.Args {
		key, _, err := lex.ProcessWord(kv.Key, tmp)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", kv.Key, err)
		}
		if key == "" {
			return nil, fmt.Errorf("name %q expands to an empty string", kv.Key)
		}
		cp.Args[i].Key, kv.Key = key, key
		if _, given := s.build.Value(kv.Key); !given && kv.Value != nil {
			v, _, err := lex.ProcessWord(*kv.Value, tmp)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", kv.Key, err)
			}
			cp.Args[i].Value = &v
		}
		tmp.Declare(cp.Args[i])
	}
	return &cp, nil
}

// freshRun returns a RUN whose mount state is its own: a value copy would
// share BuildKit's hidden mount state with the original, and Expand writes it.
func (d *Dockerfile) freshRun(c *instructions.RunCommand) (*instructions.RunCommand, error) {
	node, ok := d.nodes[c]
	if !ok {
		// Not from this Dockerfile (an ONBUILD trigger): the caller owns it.
		cp := *c
		return &cp, nil
	}
	cmd, err := parseCommand(node)
	if err != nil {
		return nil, err
	}
	run, ok := cmd.(*instructions.RunCommand)
	if !ok {
		return nil, fmt.Errorf("re-parsing RUN gave %T", cmd)
	}
	return run, nil
}
