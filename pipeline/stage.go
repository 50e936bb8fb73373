package pipeline

import (
	"errors"
	"fmt"
)

// The stages, in the order they run.
const (
	StageBuild  = "build"
	StageImage  = "image"
	StageDeploy = "deploy"
)

// Stages lists every stage in order.
var stageOrder = [...]string{StageBuild, StageImage, StageDeploy}

// Stages returns the stage names in the order they run.
func Stages() []string { return stageOrder[:] }

// Exit codes of cmd/pipeline: a CI system (or a person) tells from the code alone which stage
// failed.
const (
	ExitOK     = 0
	ExitFailed = 1 // anything not tied to a stage (interrupted, output not writable)
	ExitUsage  = 2 // bad flags or a bad pipeline file: nothing ran
	ExitBuild  = 3 // the build stage's command failed, or its output is missing
	ExitImage  = 4 // the image stage failed to build or push
	ExitDeploy = 5 // the deploy stage failed to apply, or a rollout did not complete
)

// StageError is the failure of one stage.
type StageError struct {
	Stage string
	Err   error
}

func (e *StageError) Error() string { return fmt.Sprintf("%s stage failed: %v", e.Stage, e.Err) }

func (e *StageError) Unwrap() error { return e.Err }

// UsageError is a problem with the request itself (flags, the pipeline file): no stage ran.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }

func (e *UsageError) Unwrap() error { return e.Err }

// ExitCode maps an error returned by Run to cmd/pipeline's exit code.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	var se *StageError
	if errors.As(err, &se) {
		switch se.Stage {
		case StageBuild:
			return ExitBuild
		case StageImage:
			return ExitImage
		case StageDeploy:
			return ExitDeploy
		}
	}
	return ExitFailed
}
