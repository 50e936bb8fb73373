package builder

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// step executes one instruction of a stage: metadata instructions change the config only;
// RUN, COPY, ADD and WORKDIR change the root and get a layer of what they changed.
func (b *build) step(ctx context.Context, s *stageState, raw instructions.Command, n, total int) error {
	start := time.Now()
	line := lineOf(raw)
	cmd, err := b.df.Expand(raw, s.scope)
	if err != nil {
		return err
	}
	text := sourceOf(cmd)
	b.o.reporter.Report(Event{Kind: EventStep, Time: start, Stage: s.index, StageName: s.name, Step: n, Steps: total,
		Instruction: text, Line: line})
	fail := func(err error) error {
		return fmt.Errorf("%s:%d: %s: %w", b.df.Name, line, text, err)
	}
	hit, err := b.lookupStep(ctx, s, n-1, cmd, Event{Stage: s.index, StageName: s.name, Step: n, Steps: total,
		Instruction: text, Line: line})
	if err != nil {
		return fail(err)
	}
	vols, err := b.volumesBefore(s, cmd, hit != nil)
	if err != nil {
		return fail(err)
	}

	var changed []string // paths a COPY/ADD/WORKDIR wrote; nil with fsChange means "walk the root"
	fsChange := false
	linked, linkedLayer := false, false // a COPY/ADD --link ran (copylink.go), and added a layer
	createdBy := text
	c := &s.cfg.Config
	switch cmd := cmd.(type) {
	case *instructions.EnvCommand:
		for _, kv := range cmd.Env {
			s.scope.SetEnv(kv.Key, kv.Value)
		}
		c.Env = s.scope.Env()
		createdBy = "ENV " + joinKV(cmd.Env)
	case *instructions.ArgCommand:
		for _, a := range cmd.Args {
			s.scope.Declare(a)
		}
		createdBy = "ARG " + argHistory(raw)
	case *instructions.LabelCommand:
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		for _, kv := range cmd.Labels {
			c.Labels[kv.Key] = kv.Value
		}
		createdBy = "LABEL " + joinKV(cmd.Labels)
	case *instructions.MaintainerCommand:
		s.cfg.Author = cmd.Maintainer
		createdBy = "MAINTAINER " + cmd.Maintainer
	case *instructions.ExposeCommand:
		ports, err := exposedPorts(cmd.Ports)
		if err != nil {
			return fail(err)
		}
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range ports {
			c.ExposedPorts[p] = struct{}{}
		}
		createdBy = "EXPOSE " + strings.Join(ports, " ")
	case *instructions.VolumeCommand:
		if err := b.declareVolumes(s, cmd.Volumes); err != nil {
			return fail(err)
		}
		createdBy = "VOLUME " + fmt.Sprint(cmd.Volumes)
	case *instructions.UserCommand:
		c.User = cmd.User
		createdBy = "USER " + cmd.User
	case *instructions.WorkdirCommand:
		dir := cmd.Path
		if !path.IsAbs(dir) {
			dir = path.Join("/", c.WorkingDir, dir)
		}
		dir = path.Clean(dir)
		c.WorkingDir = dir
		createdBy = "WORKDIR " + dir
		if hit != nil {
			break
		}
		created, err := b.makeWorkdir(s, dir)
		if err != nil {
			return fail(err)
		}
		if created != "" {
			fsChange, changed = true, []string{created}
		} else if len(vols) == 0 { // volume directories made before it would be its layer
			b.storeStep(s, n-1, false, createdBy, text) // cached as "no layer"
		}
	case *instructions.CmdCommand:
		c.Cmd = commandLine(cmd.ShellDependantCmdLine, c.Shell)
		s.cmdSet = true
		createdBy = "CMD " + jsonArgs(c.Cmd)
	case *instructions.EntrypointCommand:
		c.Entrypoint = commandLine(cmd.ShellDependantCmdLine, c.Shell)
		if !s.cmdSet {
			c.Cmd = nil // an inherited CMD does not survive a new ENTRYPOINT (Docker's rule)
		}
		createdBy = "ENTRYPOINT " + jsonArgs(c.Entrypoint)
	case *instructions.StopSignalCommand:
		c.StopSignal = cmd.Signal
		createdBy = "STOPSIGNAL " + cmd.Signal
	case *instructions.HealthCheckCommand:
		c.Healthcheck = healthConfig(cmd)
		createdBy = "HEALTHCHECK " + jsonArgs(c.Healthcheck.Test)
	case *instructions.ShellCommand:
		c.Shell = append([]string(nil), cmd.Shell...)
		createdBy = "SHELL " + jsonArgs(c.Shell)
	case *instructions.OnbuildCommand:
		c.OnBuild = append(c.OnBuild, cmd.Expression)
		createdBy = "ONBUILD " + cmd.Expression
	case *instructions.RunCommand:
		if hit != nil {
			break
		}
		createdBy, err = b.runCommand(ctx, s, cmd)
		if err != nil {
			return fail(err)
		}
		fsChange = true
	case *instructions.CopyCommand, *instructions.AddCommand:
		createdBy = text + " # buildkit"
		if hit != nil {
			break
		}
		job, err := b.copyJobOf(ctx, s, cmd)
		if err != nil {
			return fail(err)
		}
		if job.link {
			linked = true
			hist := v1.History{CreatedBy: createdBy, Created: v1.Time{Time: b.now()}}
			if linkedLayer, err = b.linkStep(ctx, s, job, hist); err != nil {
				return fail(err)
			}
			break
		}
		if changed, err = b.runCopy(ctx, s, job); err != nil {
			return fail(err)
		}
		fsChange = true
	default:
		return fail(fmt.Errorf("instruction %s is not supported", cmd.Name()))
	}
	if len(vols) > 0 {
		fsChange, changed = true, withVolumes(cmd, changed, vols)
	}

	hist := v1.History{CreatedBy: createdBy, Created: v1.Time{Time: b.now()}, EmptyLayer: true}
	if hit != nil {
		b.applyHit(s, hit)
		hist.EmptyLayer = false // applyHit recorded the history
	} else if linked {
		hist.EmptyLayer = !linkedLayer // linkStep recorded the history of its layer
		b.storeStep(s, n-1, linkedLayer, createdBy, text)
	} else if fsChange && !b.o.singleSnapshot {
		added, err := b.snapshotStep(ctx, s, changed, hist)
		if err != nil {
			return fail(err)
		}
		if added {
			hist.EmptyLayer = false
		}
		b.storeStep(s, n-1, added, createdBy, text)
	} else if b.o.forceBuildMetadata && !b.o.singleSnapshot {
		if err := b.emptyLayer(s, hist); err != nil {
			return fail(err)
		}
		hist.EmptyLayer = false
	}
	if hist.EmptyLayer {
		s.history = append(s.history, hist)
	}
	b.o.reporter.Report(Event{Kind: EventStepDone, Time: time.Now(), Stage: s.index, StageName: s.name, Step: n, Steps: total,
		Instruction: text, Line: line, Duration: time.Since(start)})
	return nil
}

func lineOf(c instructions.Command) int {
	if loc := c.Location(); len(loc) > 0 {
		return loc[0].Start.Line
	}
	return 0
}

// sourceOf is the instruction as written (buildkit keeps its source text).
func sourceOf(c instructions.Command) string {
	if s, ok := c.(fmt.Stringer); ok {
		return s.String()
	}
	return c.Name()
}

func joinKV(kvs instructions.KeyValuePairs) string {
	parts := make([]string, len(kvs))
	for i, kv := range kvs {
		parts[i] = kv.Key + "=" + kv.Value
	}
	return strings.Join(parts, " ")
}

// argHistory is the created_by of an ARG: the names and the defaults as the Dockerfile writes
// them, never the value a --build-arg gave (which may be a token), as Kaniko records it.
func argHistory(raw instructions.Command) string {
	c, ok := raw.(*instructions.ArgCommand)
	if !ok {
		return ""
	}
	parts := make([]string, len(c.Args))
	for i, kv := range c.Args {
		parts[i] = kv.Key
		if kv.Value != nil {
			parts[i] += "=" + *kv.Value
		}
	}
	return strings.Join(parts, " ")
}

func jsonArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = strconv.Quote(a)
	}
	return "[" + strings.Join(q, " ") + "]"
}

// commandLine turns CMD/ENTRYPOINT into the config's argv: the shell form runs through SHELL.
func commandLine(c instructions.ShellDependantCmdLine, shell []string) []string {
	if !c.PrependShell {
		return append([]string{}, c.CmdLine...)
	}
	if len(shell) == 0 {
		shell = defaultShell
	}
	return append(append([]string{}, shell...), strings.Join(c.CmdLine, " "))
}

var defaultShell = []string{"/bin/sh", "-c"}

func healthConfig(c *instructions.HealthCheckCommand) *v1.HealthConfig {
	h := c.Health
	return &v1.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
		StartPeriod: h.StartPeriod, Retries: h.Retries}
}

// exposedPorts normalises EXPOSE arguments to "port/proto", expanding ranges like 8000-8002/udp.
func exposedPorts(specs []string) ([]string, error) {
	var out []string
	for _, spec := range specs {
		portPart, proto, _ := strings.Cut(spec, "/")
		if proto == "" {
			proto = "tcp"
		}
		proto = strings.ToLower(proto)
		if proto != "tcp" && proto != "udp" && proto != "sctp" {
			return nil, fmt.Errorf("invalid proto %q in EXPOSE %s", proto, spec)
		}
		lo, hi, isRange := strings.Cut(portPart, "-")
		from, err := strconv.Atoi(lo)
		if err != nil || from < 0 || from > 65535 {
			return nil, fmt.Errorf("invalid port %q in EXPOSE %s", lo, spec)
		}
		to := from
		if isRange {
			if to, err = strconv.Atoi(hi); err != nil || to < from || to > 65535 {
				return nil, fmt.Errorf("invalid port range %q in EXPOSE %s", portPart, spec)
			}
		}
		for p := from; p <= to; p++ {
			out = append(out, strconv.Itoa(p)+"/"+proto)
		}
	}
	sort.Strings(out)
	return out, nil
}
