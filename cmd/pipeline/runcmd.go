package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/kilnbuild/kiln/executor"
	"github.com/kilnbuild/kiln/pipeline"
	"github.com/kilnbuild/kiln/pipeline/spec"
	"github.com/spf13/pflag"
)

// runFlags are the flags of "pipeline run".
type runFlags struct {
	file, buildNumber, kubeconfig, namespace, workspace string
	vars, stages                                        []string
	wait                                                bool
	logFormat, verbosity                                string
}

func newRunFlagSet(f *runFlags) *pflag.FlagSet {
	fs := pflag.NewFlagSet("pipeline run", pflag.ContinueOnError)
	fs.StringVarP(&f.file, "file", "f", spec.DefaultFileName, "Pipeline file")
	fs.StringVar(&f.buildNumber, "build-number", os.Getenv("BUILD_NUMBER"), "Build number, ${BUILD_NUMBER} in the file (default: $BUILD_NUMBER)")
	fs.StringArrayVar(&f.vars, "var", nil, "NAME=VALUE for ${NAME} in the file (repeatable; the environment is read for the rest)")
	fs.StringArrayVar(&f.stages, "stage", nil, "Stage to run: build, image or deploy (repeatable or comma-separated; default every stage in the file)")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "Kubeconfig for the deploy stage (default: $KUBECONFIG, ~/.kube/config, then the pod's service account)")
	fs.StringVarP(&f.namespace, "namespace", "n", "", "Namespace to deploy to (default: the file's, then the kubeconfig context's)")
	fs.BoolVar(&f.wait, "wait", true, "Wait for Deployments to roll out (overrides deploy.wait when given)")
	fs.StringVar(&f.workspace, "workspace", "", "The app's folder, /workspace of the build stage (default: the pipeline file's folder)")
	fs.StringVar(&f.logFormat, "log-format", "text", "Log format: text, color or json")
	fs.StringVarP(&f.verbosity, "verbosity", "v", "info", "Log level: debug, info, warn, error")
	return fs
}

func runCmd(args []string, stdout, stderr io.Writer) int {
	var f runFlags
	fs := newRunFlagSet(&f)
	fs.SetOutput(stderr)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if !slices.Contains([]string{"text", "color", "json"}, f.logFormat) {
		fmt.Fprintf(stderr, "Error: --log-format=%s: must be text, color or json\n", f.logFormat)
		return pipeline.ExitUsage
	}
	log, err := executor.NewLogger(stderr, f.logFormat, f.verbosity, false)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return pipeline.ExitUsage
	}
	p, err := loadExpanded(&f)
	if err != nil {
		log.Errorf("%v", err)
		return pipeline.ExitUsage
	}
	o := pipeline.Options{
		Workspace: f.workspace, Stages: splitList(f.stages),
		Kubeconfig: f.kubeconfig, Namespace: f.namespace,
		DockerConfig: os.Getenv("DOCKER_CONFIG"),
		Log:          log, Reporter: log, Stdout: stdout, Stderr: stderr,
	}
	if fs.Changed("wait") {
		o.Wait = &f.wait
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	start := time.Now()
	results, err := pipeline.Run(ctx, p, o)
	for _, r := range results {
		log.Infof("%-6s %8s  %s", r.Stage, r.Duration, r.Summary)
	}
	if err != nil {
		if ctx.Err() != nil {
			log.Errorf("pipeline %s interrupted: %v", p.Name, err)
			return pipeline.ExitFailed
		}
		log.Errorf("pipeline %s: %v", p.Name, err)
		return pipeline.ExitCode(err)
	}
	log.Infof("pipeline %s build %s succeeded in %s", p.Name, f.buildNumber, time.Since(start).Round(10*time.Millisecond))
	return pipeline.ExitOK
}

// loadExpanded reads the pipeline file and fills in its ${VAR}s: --build-number, --var, then
// the environment.
func loadExpanded(f *runFlags) (*spec.Pipeline, error) {
	vars, err := parseVars(f.vars)
	if err != nil {
		return nil, err
	}
	if f.buildNumber != "" {
		vars["BUILD_NUMBER"] = f.buildNumber
	}
	p, err := spec.Load(f.file)
	if err != nil {
		return nil, err
	}
	keepStages(p, splitList(f.stages))
	return p.Expand(spec.Lookup(vars, os.LookupEnv))
}

// keepStages drops the sections of stages that will not run, so their variables need no
// values: the deploy step of a CI pod has no reason to know the build's image.
func keepStages(p *spec.Pipeline, stages []string) {
	if len(stages) == 0 {
		return
	}
	if !slices.Contains(stages, pipeline.StageBuild) {
		p.Build = nil
	}
	if !slices.Contains(stages, pipeline.StageImage) {
		p.Image = nil
	}
	if !slices.Contains(stages, pipeline.StageDeploy) {
		p.Deploy = nil
	}
}
