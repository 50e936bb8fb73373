package imagestage

import (
	"path"
	"sort"

	"github.com/kilnbuild/kiln/pipeline/spec"
)

// ExecutorArgs is the executor command line of the image stage, as a CI pod runs it with the
// workspace at workspaceDir (render uses it with "/workspace" or "${CI_PROJECT_DIR}"; Run with
// the host's workspace). The context and the Dockerfile become absolute paths under
// workspaceDir, so the executor's working directory does not matter; then come the
// destinations, the cache flags, the target, the build args sorted by name, and img.Flags
// verbatim, last, so they can override anything before them.
func ExecutorArgs(img *spec.Image, workspaceDir string) []string {
	contextDir := img.ContextOrDefault()
	if !path.IsAbs(contextDir) {
		contextDir = path.Join(workspaceDir, contextDir)
	}
	df := img.DockerfileOrDefault()
	if !path.IsAbs(df) {
		df = path.Join(contextDir, df)
	}
	args := []string{"--context=dir://" + contextDir, "--dockerfile=" + df}
	for _, d := range img.Destinations {
		args = append(args, "--destination="+d)
	}
	if img.Cache {
		args = append(args, "--cache=true")
	}
	if img.CacheRepo != "" {
		args = append(args, "--cache-repo="+img.CacheRepo)
	}
	if img.CacheCopyLayers {
		args = append(args, "--cache-copy-layers=true")
	}
	if img.Target != "" {
		args = append(args, "--target="+img.Target)
	}
	names := make([]string, 0, len(img.BuildArgs))
	for k := range img.BuildArgs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		args = append(args, "--build-arg="+k+"="+img.BuildArgs[k])
	}
	return append(args, img.Flags...)
}
