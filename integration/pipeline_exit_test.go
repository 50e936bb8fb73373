package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/kilnbuild/kiln/internal/testenv"
	"github.com/kilnbuild/kiln/sandbox"
)

// TestPipelineExitCodes checks what bin/pipeline says and returns when the request itself is
// wrong (2: nothing ran) and when the deploy cannot reach its API server (5). None of them
// needs root.
func TestPipelineExitCodes(t *testing.T) {
	ws := writeContext(t, map[string]string{
		// Line numbers matter: errors name them.
		"bad.yaml": "name: bad\n" + // 1
			"build:\n" + // 2
			"  image: busybox\n" + // 3
			"  command: make\n" + // 4
			"  outptu: out\n" + // 5
			"image:\n" + // 6
			"  context: .\n" + // 7
			"deploy:\n" + // 8
			"  manifests: [app.yaml]\n" + // 9
			"  timeout: 5\n", // 10
		"build-only.yaml": "name: app\nbuild:\n  image: busybox\n  command: make\n",
		"unset.yaml": "name: app\n" +
			"build:\n" +
			"  image: ${KILN_TEST_STAGE_IMAGE}\n" + // 3
			"  command: make\n" +
			"image:\n" +
			"  destination: registry.example/app:${BUILD_NUMBER}\n", // 6
	})
	c := newCLI(t, ws)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"bad file", []string{"run", "-f", "bad.yaml", "--build-number", "1"}, []string{
			"bad.yaml:5: build.outptu: unknown key (did you mean output?)",
			"bad.yaml:6: image.destination: missing",
			"bad.yaml:10: deploy.timeout:",
		}},
		{"stage the file lacks", []string{"run", "-f", "build-only.yaml", "--stage", "deploy"}, []string{
			`--stage deploy: build-only.yaml has no "deploy" section`,
		}},
		{"unknown stage", []string{"run", "-f", "build-only.yaml", "--stage", "build,test"}, []string{
			"--stage test: must be one of build, image, deploy",
		}},
		{"undefined variable", []string{"run", "-f", "unset.yaml"}, []string{
			"unset.yaml:3: build.image: ${KILN_TEST_STAGE_IMAGE} is not set (give --var KILN_TEST_STAGE_IMAGE=...",
			"unset.yaml:6: image.destination: ${BUILD_NUMBER} is not set",
		}},
		{"bad --var", []string{"run", "-f", "build-only.yaml", "--var", "NOVALUE"}, []string{
			`--var "NOVALUE": must be NAME=VALUE`,
		}},
		{"unknown flag", []string{"run", "--bild-number", "3"}, []string{
			"unknown flag: --bild-number",
		}},
		{"missing file", []string{"run", "-f", "nope.yaml"}, []string{"nope.yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := c.want(t, 2, tc.args...)
			wantAll(t, "the output", res.output(), tc.want...)
			wantNone(t, "the output", res.output(), "==> ")
		})
	}

	t.Run("deploy to an unreachable API server", func(t *testing.T) {
		app := copyHello(t)
		server := "https://" + closedAddr(t)
		kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
		writeKubeconfig(t, kubeconfig, server)
		// No temporary folder either, as in a pod of the executor image: a deploy needs none.
		c := newCLI(t, app).withEnv("TMPDIR=" + filepath.Join(t.TempDir(), "absent"))
		res := c.want(t, 5, "run", "--stage", "deploy", "--build-number", "4",
			"--var", "REGISTRY=registry.example/demo", "--kubeconfig", kubeconfig)
		wantAll(t, "the log", res.stderr, "==> deploy stage", "deploy stage failed: ",
			"cannot reach the Kubernetes API server "+server, kubeconfig)
	})
}

// TestPipelineStageFailures runs pipelines whose build command or Dockerfile fails: each stops
// at the failing stage, which names itself and the cause, with the stage's own exit code (3
// build, 4 image), and runs no later stage.
func TestPipelineStageFailures(t *testing.T) {
	requireRoot(t)
	if err := sandbox.Supported(); err != nil {
		t.Skipf("the build and image stages need Kiln's sandbox, which this machine cannot run: %v", err)
	}
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, reg, "base/busybox:1")
	unreachable := filepath.Join(t.TempDir(), "kubeconfig")
	writeKubeconfig(t, unreachable, "https://"+closedAddr(t))
	pipelineFile := fmt.Sprintf(`name: fails
build:
  image: %s
  command: >-
    echo compiling; echo 'main.go:3: syntax error' >&2; exit 7
image:
  destination: %s
deploy:
  manifests: [app.yaml]
`, base, reg.Ref("fails:${BUILD_NUMBER}"))
	ws := writeContext(t, map[string]string{
		"kiln-pipeline.yaml": pipelineFile,
		"Dockerfile":         "FROM " + base + "\nRUN echo building\nRUN false\n",
		"app.yaml":           "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n",
	})
	c := newCLI(t, ws)

	t.Run("build", func(t *testing.T) {
		res := c.want(t, 3, "run", "--build-number", "1", "--kubeconfig", unreachable)
		wantAll(t, "the command's output", res.output(), "compiling", "main.go:3: syntax error")
		wantAll(t, "the log", res.stderr, "==> build stage",
			"build stage failed: kiln-pipeline.yaml:4: build.command", "exited with code 7", "main.go:3: syntax error")
		wantNone(t, "the log", res.stderr, "==> image stage", "==> deploy stage")
	})
	t.Run("image", func(t *testing.T) {
		res := c.want(t, 4, "run", "--build-number", "1", "--stage", "image,deploy", "--kubeconfig", unreachable)
		wantAll(t, "the RUN steps' output", res.stdout, "building\n")
		wantAll(t, "the log", res.stderr, "==> image stage",
			"image stage failed: "+filepath.Join(ws, "Dockerfile")+":3: RUN false: the command returned a non-zero code: 1")
		wantNone(t, "the log", res.stderr, "==> build stage", "==> deploy stage")
		if _, err := testenv.TryConfig(reg, reg.Ref("fails:1")); err == nil {
			t.Errorf("%s was pushed by a failed image stage", reg.Ref("fails:1"))
		}
	})
}

// writeKubeconfig writes a kubeconfig for server with a token user and namespace demo.
func writeKubeconfig(t *testing.T, path, server string) {
	t.Helper()
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: %q, insecure-skip-tls-verify: true}
users:
- name: test
  user: {token: not-a-real-token}
contexts:
- name: test
  context: {cluster: test, user: test, namespace: demo}
current-context: test
`, server)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}
