package render

import (
	"fmt"
	"slices"
	"strings"
)

// dockerHubServer is the server name Docker's config.json (and kubectl's docker-registry
// Secret) uses for Docker Hub.
const dockerHubServer = "https://index.docker.io/v1/"

// registryHost is the registry of an image reference as Docker reads it: the part before the
// first '/' when it has a '.' or a ':' or is localhost; Docker Hub ("docker.io") otherwise. A
// leading ${VAR} counts as text, so ${REGISTRY_USER}/app is on Docker Hub.
func registryHost(ref string) string {
	first, _, ok := strings.Cut(ref, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return "docker.io"
}

// registryHost is the registry of a destination, with the variables of its first component
// filled in from the known values when they all have one.
func (r *renderer) registryHost(dest string) string {
	first, rest, ok := strings.Cut(dest, "/")
	if v, missing := resolve(first, r.known); ok && len(missing) == 0 {
		dest = v + "/" + rest
	}
	return registryHost(dest)
}

// dockerServer is the server name a docker-registry Secret uses for host.
func dockerServer(host string) string {
	switch host {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return dockerHubServer
	}
	return host
}

// regcred is regcred.sh: the kubectl line that creates the registry Secret the rendered pods
// mount, for the registry of the first destination. It holds no secret: the credentials come
// from the environment of whoever runs it.
func (r *renderer) regcred() ([]byte, error) {
	server := dockerHubServer
	var others []string
	if r.p.Image != nil && len(r.p.Image.Destinations) > 0 {
		first := r.registryHost(r.p.Image.Destinations[0])
		server = dockerServer(first)
		for _, d := range r.p.Image.Destinations[1:] {
			if h := r.registryHost(d); h != first && !slices.Contains(others, h) {
				others = append(others, h)
			}
		}
	}
	lines := []string{
		fmt.Sprintf("The registry Secret %s of %s's pipeline, rendered by kiln from %s.", r.registrySecret(), r.p.Name, r.file),
		"Rendered pods mount it at " + dockerConfigDir + " as config.json: the image stage pushes with it.",
		"The credentials come from the environment, never from this file: set REGISTRY_USERNAME,",
		"REGISTRY_PASSWORD (a password or an access token) and REGISTRY_EMAIL, then run it.",
		"The server is that of the image's destination; REGISTRY_SERVER overrides it.",
	}
	if len(others) > 0 {
		lines = append(lines, "Other destinations are on "+strings.Join(others, ", ")+": their credentials must be",
			"added to the Secret's .dockerconfigjson too (kubectl create secret generic --from-file).")
	}
	cmd := strings.Join([]string{
		"kubectl create secret docker-registry", shellWord(r.registrySecret()),
		`--docker-server="${REGISTRY_SERVER:-` + server + `}"`,
		`--docker-username="${REGISTRY_USERNAME:?set REGISTRY_USERNAME}"`,
		`--docker-password="${REGISTRY_PASSWORD:?set REGISTRY_PASSWORD}"`,
		`--docker-email="${REGISTRY_EMAIL:-}"`,
		"-n", shellWord(Namespace(r.p)),
	}, " ")
	return []byte("#!/bin/sh\n" + comment(lines...) + "set -eu\n" + cmd + "\n"), nil
}
