#!/bin/sh
# The registry Secret regcred of minimalapi's pipeline, rendered by kiln from kiln-pipeline.yaml.
# Rendered pods mount it at /kaniko/.docker as config.json: the image stage pushes with it.
# The credentials come from the environment, never from this file: set REGISTRY_USERNAME,
# REGISTRY_PASSWORD (a password or an access token) and REGISTRY_EMAIL, then run it.
# The server is that of the image's destination; REGISTRY_SERVER overrides it.
set -eu
kubectl create secret docker-registry regcred --docker-server="${REGISTRY_SERVER:-https://index.docker.io/v1/}" --docker-username="${REGISTRY_USERNAME:?set REGISTRY_USERNAME}" --docker-password="${REGISTRY_PASSWORD:?set REGISTRY_PASSWORD}" --docker-email="${REGISTRY_EMAIL:-}" -n default
