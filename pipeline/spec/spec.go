package spec

import "time"

// Pipeline is one kiln-pipeline.yaml. Strings hold ${VAR} references as written until Expand
// replaces them; render keeps them so the CI system fills them in (BUILD_NUMBER above all).
type Pipeline struct {
	// Name names the app: objects, pods and jobs rendered for it carry it.
	Name string `json:"name"`
	// Namespace is where the pipeline deploys and where its rendered objects live.
	// Empty: the kubeconfig context's namespace (run), "default" (render).
	Namespace string `json:"namespace,omitempty"`
	// Source is where a rendered Job fetches the code from (CI servers check it out themselves).
	Source *Source `json:"source,omitempty"`
	// ExecutorImage is the Kiln executor image the rendered pods run (the executor and the
	// pipeline binary are both in it). Default DefaultExecutorImage.
	ExecutorImage string `json:"executorImage,omitempty"`
	// RegistrySecret is the docker-registry Secret mounted at /kaniko/.docker in rendered pods
	// (default "regcred").
	RegistrySecret string  `json:"registrySecret,omitempty"`
	Build          *Build  `json:"build,omitempty"`
	Image          *Image  `json:"image,omitempty"`
	Deploy         *Deploy `json:"deploy,omitempty"`

	// File is the path the pipeline was read from, for messages.
	File string `json:"-"`
	// Lines maps a key's path ("image.destination", "build.env.GOFLAGS", "deploy.manifests[1]")
	// to the line it is on in File, so later errors can name it too.
	Lines map[string]int `json:"-"`
}

// Source is a git repository and ref.
type Source struct {
	Git string `json:"git"`
	Ref string `json:"ref,omitempty"` // branch, tag or commit; default: the remote's HEAD
}

// Build is the build stage: a command run in the stage image's root with the workspace
// bind-mounted, as the SDK container of a CI pod runs it.
type Build struct {
	// Image is the stage image (e.g. mcr.microsoft.com/dotnet/sdk:6.0-alpine).
	Image string `json:"image"`
	// Command is run with /bin/sh -c when it is one string, as exec form when it is a list.
	Command Command `json:"command"`
	// Workdir is the working directory inside the stage image (default /workspace).
	Workdir string `json:"workdir,omitempty"`
	// Output is the directory, relative to the workspace, the command writes its result to;
	// it must exist and be non-empty after the command.
	Output string            `json:"output,omitempty"`
	Env    map[string]string `json:"env,omitempty"`
}

// Command is a shell command line (Shell) or an exec-form argument list (Exec); exactly one is set.
type Command struct {
	Shell string
	Exec  []string
}

// Args is the argv to run: the exec form as is, a shell line through /bin/sh -c.
func (c Command) Args() []string {
	if c.Exec != nil {
		return c.Exec
	}
	return []string{"/bin/sh", "-c", c.Shell}
}

// Image is the image stage: the executor's build, with its options.
type Image struct {
	Dockerfile string `json:"dockerfile,omitempty"` // default "Dockerfile", relative to Context
	Context    string `json:"context,omitempty"`    // default ".", relative to the pipeline file
	// Destinations are the references pushed (one is required); "destination" in the file may
	// be one string or a list.
	Destinations    []string          `json:"destinations"`
	Cache           bool              `json:"cache,omitempty"`
	CacheRepo       string            `json:"cacheRepo,omitempty"`
	CacheCopyLayers bool              `json:"cacheCopyLayers,omitempty"`
	Target          string            `json:"target,omitempty"`
	BuildArgs       map[string]string `json:"buildArgs,omitempty"`
	// Flags are further executor flags, as on its command line ("--insecure",
	// "--compression=zstd"); they are checked against the executor's flag set.
	Flags []string `json:"flags,omitempty"`
}

// Deploy is the deploy stage.
type Deploy struct {
	// Manifests are YAML files (relative to the pipeline file) of the objects to apply.
	Manifests []string `json:"manifests"`
	// Replacements maps literal text in the manifests to its replacement ("<TAG>": "${BUILD_NUMBER}").
	Replacements map[string]string `json:"replacements,omitempty"`
	// Wait follows every Deployment's rollout until it is complete (default true).
	Wait *bool `json:"wait,omitempty"`
	// Timeout bounds the wait (default DefaultTimeout).
	Timeout Duration `json:"timeout,omitempty"`
}

// Duration is a time.Duration written as "90s" or "5m" in the file.
type Duration struct{ time.Duration }

// Defaults applied where the file is silent.
const (
	DefaultExecutorImage  = "ghcr.io/kilnbuild/executor:debug"
	DefaultRegistrySecret = "regcred"
	DefaultWorkdir        = "/workspace"
	DefaultTimeout        = 5 * time.Minute
	DefaultFileName       = "kiln-pipeline.yaml"
)

// ShouldWait reports whether the deploy stage waits for rollouts.
func (d *Deploy) ShouldWait() bool { return d.Wait == nil || *d.Wait }

// Line returns the line of the key at path in the file (0 if unknown).
func (p *Pipeline) Line(path string) int { return p.Lines[path] }
