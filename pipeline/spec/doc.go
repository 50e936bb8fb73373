// Package spec is the pipeline file, kiln-pipeline.yaml: its types, how it is read (every error
// names the file, the line and the key), how ${VAR} references in it are expanded, and its JSON
// schema. It knows nothing of how the stages run.
//
// # The file
//
// A pipeline has a name and up to three stages, run in this order: build compiles the app in a
// stage image, image builds and pushes its image with Kiln's executor (as Kaniko's would), and
// deploy applies its Kubernetes manifests. Give at least one stage. Only name and the keys
// marked required below must be there. Paths are relative to the pipeline file's directory
// (the workspace, /workspace in the build stage) and must stay inside it. The whole file, every
// key explained:
//
//	# yaml-language-server: $schema=https://raw.githubusercontent.com/kilnbuild/kiln/main/pipeline/spec/schema.json
//	name: minimalapi                 # required: a Kubernetes name, carried by rendered objects
//	namespace: ${NAMESPACE:-apps}    # where it deploys; default: the kubeconfig's ("default" rendered)
//	source:                          # where a rendered Job fetches the code
//	  git: https://github.com/me/minimalapi.git   # required in source
//	  ref: main                      # branch, tag or commit; default: the remote's HEAD
//	executorImage: ghcr.io/kilnbuild/executor:debug   # rendered pods' image (the default)
//	registrySecret: regcred          # Secret mounted at /kaniko/.docker in rendered pods (the default)
//
//	build:                           # run a command in a stage image, the workspace at /workspace
//	  image: mcr.microsoft.com/dotnet/sdk:6.0-alpine  # required: the stage image
//	  command: >-                    # required: one string runs with /bin/sh -c, a list as is
//	    dotnet publish MinimalApi/MinimalApi.csproj -c Release -r linux-musl-x64
//	    --self-contained true -p:PublishSingleFile=true -o out
//	  workdir: /workspace            # the command's directory in the stage image (the default)
//	  output: out                    # must exist and be non-empty after the command
//	  env:                           # the command's environment
//	    DOTNET_CLI_TELEMETRY_OPTOUT: 1   # numbers and booleans are taken as written
//
//	image:                           # build the Dockerfile and push the image
//	  dockerfile: Dockerfile         # relative to context (the default)
//	  context: .                     # the build context (the default)
//	  destination: ${REGISTRY_USER}/minimalapi:${BUILD_NUMBER}   # required: one or a list
//	  cache: true                    # --cache: reuse layers from the cache repository
//	  cacheCopyLayers: true          # --cache-copy-layers
//	  cacheRepo: ${REGISTRY_USER}/kaniko-cache   # --cache-repo; default: destination's repo + /cache
//	  # target: runtime              # --target: the Dockerfile stage to build; default: the last
//	  buildArgs:                     # --build-arg NAME=VALUE
//	    CONFIGURATION: Release
//	  flags:                         # any other executor flag, one per item, the value after =
//	    - --compression=zstd
//
//	deploy:                          # apply the manifests (server-side apply, field manager kiln)
//	  manifests: [minimalapi.yaml]   # required: the files of the objects to apply
//	  replacements:                  # text in the manifests -> what replaces it
//	    <TAG>: ${BUILD_NUMBER}
//	  wait: true                     # follow every Deployment's rollout (the default)
//	  timeout: 5m                    # how long the rollout may take (default 5m)
//
// Keys are checked: an unknown key (with a "did you mean" for near misses), a value of the
// wrong type, a missing required key, a duplicate key and a bad value (a destination that is
// not an image reference, a path that is absolute or climbs out with .., a duration without a
// unit, a flag without its dashes or one with a key of its own) are errors. Parse reports them
// all, in line order, each as FILE:LINE: key.path: what is wrong:
//
//	kiln-pipeline.yaml:26: image.cacherepo: unknown key (did you mean cacheRepo?)
//	kiln-pipeline.yaml:38: deploy.timeout: "5 minutes" is not a duration: write it as 90s, 5m or 1h30m
//
// # Variables
//
// Every string value (not the keys of env, buildArgs and replacements) may refer to variables,
// which Expand fills in: `pipeline run` takes them from --build-number (BUILD_NUMBER) and
// --var NAME=VALUE first, then the environment; `pipeline render` leaves them for the CI system.
//
//	${NAME} or $NAME      NAME's value; an error if NAME is not set
//	${NAME:-default}      default if NAME is unset or empty
//	${NAME:+alternative}  alternative if NAME is set and not empty, else nothing
//	$$                    a literal $, e.g. in a build command: echo $$HOME
//
// ParseWord reads a value in this syntax (a Word), for those that write the references in
// another syntax, as render does for CI systems and Kubernetes.
//
// An optional key whose value expands to nothing is as if it were left out, so that
// `target: ${TARGET:-}` builds the last stage unless TARGET is given.
//
// # Defaults
//
// Parse applies no defaults: a key left out stays the zero value, so that render can tell what
// the file says from what it leaves open. The stages take the defaults from
// ExecutorImageOrDefault, RegistrySecretOrDefault, WorkdirOrDefault, DockerfileOrDefault,
// ContextOrDefault, TimeoutOrDefault and ShouldWait.
//
// # Schema
//
// Schema (schema.json, printed by `pipeline schema`) lets editors complete and check the file.
package spec
