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
	"github.com/kilnbuild/kiln/cache"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// step executes one instruction of a stage: metadata instructions change the config only;
// RUN, COPY, ADD and WORKDIR change the root and get a layer of what they changed.
func (b *build) step(ctx context.Context, s *stageState, raw instructions.Command, n, total int) error {
	start := time.Now()
	cmd, err := b.df.Expand(raw, s.scope)
	if err != nil {
		return err
	}
	at := stepRef{n: n, total: total, line: lineOf(raw), text: sourceOf(cmd)}
	b.o.reporter.Report(at.event(s, EventStep, start))
	fail := func(err error) error {
		return fmt.Errorf("%s:%d: %s: %w", b.df.Name, at.line, at.text, err)
	}
	hit, err := b.lookupStep(ctx, s, n-1, cmd, at.event(s, "", time.Time{}))
	if err != nil {
		return fail(err)
	}
	vols, err := b.volumesBefore(s, cmd, hit != nil)
	if err != nil {
		return fail(err)
	}
	execStart := time.Now()
	out, err := b.execute(ctx, s, cmd, raw, hit != nil, len(vols) > 0, at)
	if err != nil {
		return fail(err)
	}
	if len(vols) > 0 {
		out.fsChange, out.changed = true, withVolumes(cmd, out.changed, vols)
	}
	if hit == nil && out.fsChange {
		b.reportPhase(EventExecute, s, n, total, at.text, at.line, execStart)
	}
	if err := b.record(ctx, s, hit, out, at); err != nil {
		return fail(err)
	}
	done := at.event(s, EventStepDone, time.Now())
	done.Duration = time.Since(start)
	b.o.reporter.Report(done)
	return nil
}

// stepRef names one step of a stage: its number, the stage's step count, its line and text.
type stepRef struct {
	n, total, line int
	text           string
}

// event is an event of kind about step at of stage s.
func (at stepRef) event(s *stageState, kind EventKind, t time.Time) Event {
	return Event{Kind: kind, Time: t, Stage: s.index, StageName: s.name, Step: at.n, Steps: at.total,
		Instruction: at.text, Line: at.line}
}

// stepOutcome is what executing one instruction did.
type stepOutcome struct {
	createdBy   string   // the history's created_by
	fsChange    bool     // the root changed, so the step gets a layer
	changed     []string // the paths a COPY/ADD/WORKDIR wrote; nil with fsChange means "walk the root"
	linked      bool     // a COPY/ADD --link ran (copylink.go)
	linkedLayer bool     // and it added a layer
}

// execute carries out cmd, or only its config change when the layer cache hit (hit).
func (b *build) execute(ctx context.Context, s *stageState, cmd, raw instructions.Command, hit, vols bool, at stepRef) (stepOutcome, error) {
	switch cmd := cmd.(type) {
	case *instructions.RunCommand:
		if hit {
			return stepOutcome{createdBy: at.text}, nil
		}
		createdBy, err := b.runCommand(ctx, s, cmd)
		return stepOutcome{createdBy: createdBy, fsChange: true}, err
	case *instructions.CopyCommand, *instructions.AddCommand:
		return b.executeCopy(ctx, s, cmd, hit, at.text+" # buildkit")
	case *instructions.WorkdirCommand:
		return b.executeWorkdir(s, cmd, hit, vols, at)
	}
	createdBy, err := b.configStep(s, cmd, raw)
	return stepOutcome{createdBy: createdBy}, err
}

// executeCopy runs a COPY or ADD; one with --link makes its own layer (copylink.go).
func (b *build) executeCopy(ctx context.Context, s *stageState, cmd instructions.Command, hit bool, createdBy string) (stepOutcome, error) {
	out := stepOutcome{createdBy: createdBy}
	if hit {
		return out, nil
	}
	job, err := b.copyJobOf(ctx, s, cmd)
	if err != nil {
		return out, err
	}
	if job.link {
		out.linked = true
		hist := v1.History{CreatedBy: createdBy, Created: v1.Time{Time: b.now()}}
		out.linkedLayer, err = b.linkStep(ctx, s, job, hist)
		return out, err
	}
	out.changed, err = b.runCopy(ctx, s, job)
	out.fsChange = true
	return out, err
}

// executeWorkdir sets the working directory and creates it when it is missing.
func (b *build) executeWorkdir(s *stageState, cmd *instructions.WorkdirCommand, hit, vols bool, at stepRef) (stepOutcome, error) {
	c := &s.cfg.Config
	dir := cmd.Path
	if !path.IsAbs(dir) {
		dir = path.Join("/", c.WorkingDir, dir)
	}
	c.WorkingDir = path.Clean(dir)
	out := stepOutcome{createdBy: "WORKDIR " + c.WorkingDir}
	if hit {
		return out, nil
	}
	created, err := b.makeWorkdir(s, c.WorkingDir)
	if err != nil {
		return out, err
	}
	if created != "" {
		out.fsChange, out.changed = true, []string{created}
	} else if !vols { // volume directories made before it would be its layer
		b.storeStep(s, at.n-1, false, out.createdBy, at.text) // cached as "no layer"
	}
	return out, nil
}

// configStep applies an instruction that changes the image's config only and returns its
// created_by.
func (b *build) configStep(s *stageState, cmd, raw instructions.Command) (string, error) {
	c := &s.cfg.Config
	switch cmd := cmd.(type) {
	case *instructions.EnvCommand:
		for _, kv := range cmd.Env {
			s.scope.SetEnv(kv.Key, kv.Value)
		}
		c.Env = s.scope.Env()
		return "ENV " + joinKV(cmd.Env), nil
	case *instructions.ArgCommand:
		for _, a := range cmd.Args {
			s.scope.Declare(a)
		}
		return "ARG " + argHistory(raw), nil
	case *instructions.LabelCommand:
		return "LABEL " + joinKV(cmd.Labels), addLabels(c, cmd.Labels)
	case *instructions.MaintainerCommand:
		s.cfg.Author = cmd.Maintainer
		return "MAINTAINER " + cmd.Maintainer, nil
	case *instructions.ExposeCommand:
		return expose(c, cmd.Ports)
	case *instructions.VolumeCommand:
		return "VOLUME " + fmt.Sprint(cmd.Volumes), b.declareVolumes(s, cmd.Volumes)
	case *instructions.UserCommand:
		c.User = cmd.User
		return "USER " + cmd.User, nil
	case *instructions.CmdCommand:
		c.Cmd = commandLine(cmd.ShellDependantCmdLine, c.Shell)
		s.cmdSet = true
		return "CMD " + jsonArgs(c.Cmd), nil
	case *instructions.EntrypointCommand:
		c.Entrypoint = commandLine(cmd.ShellDependantCmdLine, c.Shell)
		if !s.cmdSet {
			c.Cmd = nil // an inherited CMD does not survive a new ENTRYPOINT (Docker's rule)
		}
		return "ENTRYPOINT " + jsonArgs(c.Entrypoint), nil
	case *instructions.StopSignalCommand:
		c.StopSignal = cmd.Signal
		return "STOPSIGNAL " + cmd.Signal, nil
	case *instructions.HealthCheckCommand:
		c.Healthcheck = healthConfig(cmd)
		return "HEALTHCHECK " + jsonArgs(c.Healthcheck.Test), nil
	case *instructions.ShellCommand:
		c.Shell = append([]string(nil), cmd.Shell...)
		return "SHELL " + jsonArgs(c.Shell), nil
	case *instructions.OnbuildCommand:
		c.OnBuild = append(c.OnBuild, cmd.Expression)
		return "ONBUILD " + cmd.Expression, nil
	}
	return "", fmt.Errorf("instruction %s is not supported", cmd.Name())
}

// addLabels sets LABEL's pairs in c.
func addLabels(c *v1.Config, labels instructions.KeyValuePairs) error {
	if c.Labels == nil {
		c.Labels = map[string]string{}
	}
	for _, kv := range labels {
		c.Labels[kv.Key] = kv.Value
	}
	return nil
}

// expose adds EXPOSE's ports to c and returns the step's created_by.
func expose(c *v1.Config, specs []string) (string, error) {
	ports, err := exposedPorts(specs)
	if err != nil {
		return "", err
	}
	if c.ExposedPorts == nil {
		c.ExposedPorts = map[string]struct{}{}
	}
	for _, p := range ports {
		c.ExposedPorts[p] = struct{}{}
	}
	return "EXPOSE " + strings.Join(ports, " "), nil
}

// record adds the step's history and layer: the cached layer on a hit, a snapshot of what
// changed, or an empty layer when --force-build-metadata asks for one.
func (b *build) record(ctx context.Context, s *stageState, hit *cache.Result, out stepOutcome, at stepRef) error {
	hist := v1.History{CreatedBy: out.createdBy, Created: v1.Time{Time: b.now()}, EmptyLayer: true}
	switch {
	case hit != nil:
		b.applyHit(s, hit)
		hist.EmptyLayer = false // applyHit recorded the history
	case out.linked:
		hist.EmptyLayer = !out.linkedLayer // linkStep recorded the history of its layer
		b.storeStep(s, at.n-1, out.linkedLayer, out.createdBy, at.text)
	case out.fsChange && !b.o.singleSnapshot:
		added, err := b.snapshotStep(ctx, s, out.changed, hist)
		if err != nil {
			return err
		}
		if added {
			hist.EmptyLayer = false
			b.reportCompress(s, at.n, at.total, at.text, at.line, s.layers[len(s.layers)-1].Layer)
		}
		b.storeStep(s, at.n-1, added, out.createdBy, at.text)
	case b.o.forceBuildMetadata && !b.o.singleSnapshot:
		if err := b.emptyLayer(s, hist); err != nil {
			return err
		}
		hist.EmptyLayer = false
	}
	if hist.EmptyLayer {
		s.history = append(s.history, hist)
	}
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
