package integration

import (
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/testenv"
)

// TestPushCheckFailsBeforeAnyRun proves Kaniko's push permission check: a destination that
// cannot be pushed to (wrong or missing credentials, an unknown CA, nothing listening) fails
// the build within seconds, before the first RUN, naming registry, repository and reason; and
// the right credentials from a kubectl-made config.json pass the check and push.
func TestPushCheckFailsBeforeAnyRun(t *testing.T) {
	requireRoot(t)
	plain := testenv.StartRegistry(t, testenv.RegistryOptions{})
	base := testenv.PushBusybox(t, plain, "base/busybox:latest")
	authReg := testenv.StartRegistry(t, testenv.RegistryOptions{Auth: true})
	tlsReg := testenv.StartRegistry(t, testenv.RegistryOptions{TLS: true})
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM " + base + "\nRUN echo ran > /ran-marker\n"})

	wrongCreds := writeDockerConfig(t, map[string][2]string{authReg.Addr: {authReg.User, "not-the-password"}})
	noCreds := writeDockerConfig(t, nil)
	refused := closedAddr(t)

	for _, tc := range []struct {
		name, dest, config, reason string
		registry, repo             string
	}{
		{"wrong credentials", authReg.Ref("team/app:1"), wrongCreds, "unauthorized", authReg.Addr, "team/app"},
		{"no credentials", authReg.Ref("team/app:2"), noCreds, "unauthorized", authReg.Addr, "team/app"},
		{"unknown CA", tlsReg.Ref("team/tls:1"), noCreds, "TLS", tlsReg.Addr, "team/tls"},
		{"connection refused", refused + "/team/gone:1", noCreds, "connection refused", refused, "team/gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := registryPod(t, ctx, "--destination", tc.dest, "--insecure-pull")
			p.DockerConfig = tc.config
			start := time.Now()
			res := runPodWant(t, p, false)
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("the check took %s, want a failure within seconds", d)
			}
			want := fmt.Sprintf("registry %s, repository %s: %s", tc.registry, tc.repo, tc.reason)
			if !strings.Contains(res.Stderr, want) {
				t.Errorf("log does not say %q:\n%s", want, res.Stderr)
			}
			noStepRan(t, res, "ran-marker")
		})
	}
	notPushed(t, authReg, authReg.Ref("team/app:1"))
	notPushed(t, authReg, authReg.Ref("team/app:2"))
	notPushed(t, tlsReg, tlsReg.Ref("team/tls:1"))

	t.Run("right credentials", func(t *testing.T) {
		dest := authReg.Ref("team/app:ok")
		p := registryPod(t, ctx, "--destination", dest, "--insecure-pull")
		p.DockerConfig = authReg.DockerConfig(t)
		res := runPodWant(t, p, true)
		if _, err := os.Lstat(filepath.Join(res.Root, "ran-marker")); err != nil {
			t.Errorf("the RUN did not execute: %v", err)
		}
		file(t, testenv.ExportImage(t, authReg, dest), "ran-marker")
	})
}

// TestCredentialHelpersInPod pulls the base from one htpasswd registry with credentials from
// a credsStore helper and pushes to another with a credHelpers helper: docker-credential-*
// programs on the pod's PATH (/kaniko here, which survives the build), as Kaniko's image
// ships them. config.json holds no secret.
func TestCredentialHelpersInPod(t *testing.T) {
	requireRoot(t)
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("busybox-static not installed (the helper scripts run with it): ", err)
	}
	pullReg := testenv.StartRegistry(t, testenv.RegistryOptions{Auth: true})
	pushReg := testenv.StartRegistry(t, testenv.RegistryOptions{Auth: true})
	base := testenv.PushBusybox(t, pullReg, "base/busybox:latest")
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM " + base + "\nRUN echo helped > /helped\n"})

	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	if err := os.Mkdir(logDir, 0o777); err != nil {
		t.Fatal(err)
	}
	store := writeHelper(t, dir, "store", pullReg)
	helper := writeHelper(t, dir, "helper", pushReg)
	config := filepath.Join(dir, "config.json")
	cfg := fmt.Sprintf(`{"credsStore":"kilnstore","credHelpers":{%q:"kilnhelper"}}`, pushReg.Addr)
	if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	dest := pushReg.Ref("team/helped:1")
	p := registryPod(t, ctx, "--destination", dest, "--insecure", "--insecure-pull")
	p.DockerConfig = config
	p.Mounts = map[string]string{
		"/kaniko/busybox":                      "/bin/busybox",
		"/kaniko/docker-credential-kilnstore":  store,
		"/kaniko/docker-credential-kilnhelper": helper,
		"/kaniko/helperlog":                    logDir,
	}
	runPodWant(t, p, true)
	if e := file(t, testenv.ExportImage(t, pushReg, dest), "helped"); string(e.Content) != "helped\n" {
		t.Errorf("/helped = %q", e.Content)
	}
	for _, name := range []string{"store", "helper"} {
		calls := readFile(t, filepath.Join(logDir, name))
		want := map[string]string{"store": pullReg.Addr, "helper": pushReg.Addr}[name]
		if !strings.Contains(calls, "get "+want) {
			t.Errorf("helper %s was not asked for %s; calls:\n%s", name, want, calls)
		}
	}
}

// writeHelper writes a docker-credential helper script that logs each call to
// /kaniko/helperlog/<name> and answers with reg's credentials for reg only.
func writeHelper(t *testing.T, dir, name string, reg *testenv.Registry) string {
	t.Helper()
	script := fmt.Sprintf(`#!/kaniko/busybox sh
read -r server || true
echo "$1 $server" >> /kaniko/helperlog/%s
case "$1 $server" in
"get %s"|"get https://%s"|"get http://%s")
	printf '{"ServerURL":"%%s","Username":"%s","Secret":"%s"}\n' "$server" ;;
get*)
	echo "credentials not found in native keychain"; exit 1 ;;
esac
`, name, reg.Addr, reg.Addr, reg.Addr, reg.User, reg.Password)
	p := filepath.Join(dir, "docker-credential-"+name)
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeDockerConfig writes a config.json with user/password per registry.
func writeDockerConfig(t *testing.T, creds map[string][2]string) string {
	t.Helper()
	var entries []string
	for reg, up := range creds {
		auth := base64.StdEncoding.EncodeToString([]byte(up[0] + ":" + up[1]))
		entries = append(entries, fmt.Sprintf("%q:{\"auth\":%q}", reg, auth))
	}
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, []byte(`{"auths":{`+strings.Join(entries, ",")+`}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// closedAddr returns a 127.0.0.1 address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
