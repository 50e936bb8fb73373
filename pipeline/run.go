package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kilnbuild/kiln/builder"
	"github.com/kilnbuild/kiln/pipeline/buildstage"
	"github.com/kilnbuild/kiln/pipeline/deploystage"
	"github.com/kilnbuild/kiln/pipeline/imagestage"
	"github.com/kilnbuild/kiln/pipeline/spec"
	"github.com/kilnbuild/kiln/registry"
)

// Logger is where Run reports what it does.
type Logger interface {
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
}

// Options says how Run runs a pipeline.
type Options struct {
	// Workspace is the app's folder: the build stage sees it at /workspace, and the image
	// context, build output and manifests are relative to it. Default: the pipeline file's folder.
	Workspace string
	// Stages selects stages by name; empty runs every stage the file has, in order.
	Stages []string
	// Kubeconfig, Namespace and Wait configure the deploy stage (see deploystage.Options).
	Kubeconfig string
	Namespace  string
	Wait       *bool
	// DockerConfig is the folder of the registry credentials (config.json); "" means
	// $DOCKER_CONFIG, then ~/.docker, as the executor reads them.
	DockerConfig string
	// Pull configures how the build stage pulls its image (the image stage reads its registry
	// settings from image.flags, as the executor does).
	Pull []registry.Option
	// WorkDir holds the stages' scratch roots; "" means a temporary folder removed afterwards.
	WorkDir string
	Log     Logger
	// Reporter receives the image stage's build events (steps, cache hits and misses).
	Reporter builder.Reporter
	// Stdout and Stderr receive the build stage command's and RUN steps' output.
	Stdout, Stderr io.Writer
}

// StageResult is what one stage did.
type StageResult struct {
	Stage    string
	Duration time.Duration
	// Summary is a line for people: the image's digest and cache hits, the objects applied.
	Summary string
}

// Run runs the selected stages of p, which must be expanded (spec.Pipeline.Expand), in order,
// and stops at the first that fails with a *StageError naming it.
func Run(ctx context.Context, p *spec.Pipeline, o Options) ([]StageResult, error) {
	stages, err := selectStages(p, o.Stages)
	if err != nil {
		return nil, &UsageError{err}
	}
	if err := o.defaults(p); err != nil {
		return nil, err
	}
	cleanup, err := o.scratch(stages)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	var results []StageResult
	for _, name := range stages {
		if err := ctx.Err(); err != nil {
			return results, err
		}
		o.Log.Infof("==> %s stage", name)
		start := time.Now()
		summary, err := runStage(ctx, name, p, o)
		took := time.Since(start).Round(10 * time.Millisecond)
		if err != nil {
			o.Log.Infof("<== %s stage failed after %s", name, took)
			return results, &StageError{Stage: name, Err: err}
		}
		o.Log.Infof("<== %s stage done in %s: %s", name, took, summary)
		results = append(results, StageResult{Stage: name, Duration: took, Summary: summary})
	}
	return results, nil
}

// selectStages returns the stages to run in pipeline order, refusing a stage the file lacks.
func selectStages(p *spec.Pipeline, want []string) ([]string, error) {
	has := map[string]bool{StageBuild: p.Build != nil, StageImage: p.Image != nil, StageDeploy: p.Deploy != nil}
	if len(want) == 0 {
		var all []string
		for _, s := range Stages() {
			if has[s] {
				all = append(all, s)
			}
		}
		return all, nil
	}
	for _, w := range want {
		known, ok := has[w]
		if !ok {
			return nil, fmt.Errorf("--stage %s: must be one of %s", w, strings.Join(Stages(), ", "))
		}
		if !known {
			return nil, fmt.Errorf("--stage %s: %s has no %q section", w, p.File, w)
		}
	}
	var out []string
	for _, s := range Stages() {
		if slices.Contains(want, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

func (o *Options) defaults(p *spec.Pipeline) error {
	if o.Workspace == "" {
		o.Workspace = filepath.Dir(p.File)
	}
	ws, err := filepath.Abs(o.Workspace)
	if err != nil {
		return &UsageError{fmt.Errorf("workspace %s: %w", o.Workspace, err)}
	}
	if fi, err := os.Stat(ws); err != nil || !fi.IsDir() {
		return &UsageError{fmt.Errorf("workspace %s is not a directory", ws)}
	}
	o.Workspace = ws
	if o.Log == nil {
		return errors.New("pipeline: Options.Log is required")
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = o.Stdout
	}
	return nil
}

// scratch makes the work folder the build and image stages unpack their roots into, when one
// of them runs and none was given; the returned func removes it. A deploy alone needs none, so
// it runs where there is no temporary folder at all (a pod of the executor image has no /tmp).
func (o *Options) scratch(stages []string) (func(), error) {
	if !slices.Contains(stages, StageBuild) && !slices.Contains(stages, StageImage) {
		return func() {}, nil
	}
	if o.WorkDir != "" {
		if err := os.MkdirAll(o.WorkDir, 0o700); err != nil {
			return nil, fmt.Errorf("work directory: %w", err)
		}
		return func() {}, nil
	}
	dir, err := os.MkdirTemp("", "kiln-pipeline-")
	if err != nil {
		return nil, fmt.Errorf("work directory of the build and image stages (set TMPDIR to a writable folder): %w", err)
	}
	o.WorkDir = dir
	return func() { os.RemoveAll(dir); o.WorkDir = "" }, nil
}

func runStage(ctx context.Context, name string, p *spec.Pipeline, o Options) (string, error) {
	switch name {
	case StageBuild:
		return runBuild(ctx, p, o)
	case StageImage:
		return runImage(ctx, p, o)
	default:
		return runDeploy(ctx, p, o)
	}
}

func runBuild(ctx context.Context, p *spec.Pipeline, o Options) (string, error) {
	err := buildstage.Run(ctx, p.Build, buildstage.Options{
		Workspace:    o.Workspace,
		WorkDir:      filepath.Join(o.WorkDir, "build"),
		DockerConfig: o.DockerConfig,
		Pull:         o.Pull,
		Stdout:       o.Stdout,
		Stderr:       o.Stderr,
		Log:          o.Log,
		Pipeline:     p,
	})
	if err != nil {
		return "", err
	}
	if p.Build.Output == "" {
		return "command succeeded", nil
	}
	return "output in " + p.Build.Output, nil
}

func runImage(ctx context.Context, p *spec.Pipeline, o Options) (string, error) {
	res, err := imagestage.Run(ctx, p.Image, imagestage.Options{
		Workspace:    o.Workspace,
		WorkDir:      filepath.Join(o.WorkDir, "image"),
		DockerConfig: o.DockerConfig,
		Log:          o.Log,
		Reporter:     o.Reporter,
		Output:       o.Stdout,
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("pushed %s (%s); layer cache: %d hits, %d misses",
		strings.Join(res.Destinations, ", "), res.Digest, res.CacheHits, res.CacheMisses), nil
}

func runDeploy(ctx context.Context, p *spec.Pipeline, o Options) (string, error) {
	changes, err := deploystage.Run(ctx, p.Deploy, p.Namespace, deploystage.Options{
		Kubeconfig: o.Kubeconfig,
		Namespace:  o.Namespace,
		BaseDir:    o.Workspace,
		Wait:       o.Wait,
		Log:        o.Log,
	})
	if err != nil {
		return "", err
	}
	counts := map[string]int{}
	for _, c := range changes {
		counts[c.Action]++
	}
	return fmt.Sprintf("%d objects applied (%d created, %d configured, %d unchanged)",
		len(changes), counts["created"], counts["configured"], counts["unchanged"]), nil
}
