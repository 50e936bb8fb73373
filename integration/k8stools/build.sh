#!/bin/bash
# Builds the Kubernetes binaries the tests run (kube-apiserver for the deploy tests; the rest for
# the one-node cluster) from the k8s.io/kubernetes module pinned in this folder's go.mod, once:
# they are kept outside the checkout, keyed by version, in $KILN_K8S_CACHE (default
# /var/cache/kiln/k8s-<version>). Prints that bin directory. The first build takes about 20
# minutes on two cores; later runs find the binaries and return at once.
set -euo pipefail
cd "$(dirname "$0")"
version=$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3}' go.mod)
out=${KILN_K8S_CACHE:-/var/cache/kiln/k8s-$version}/bin
cmds="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl"
missing=""
for c in $cmds; do [ -x "$out/$c" ] || missing="$missing $c"; done
if [ -n "$missing" ]; then
  mkdir -p "$out"
  minor=${version#v1.}; minor=${minor%%.*}
  pkg=k8s.io/component-base/version
  ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$version"
  for c in $missing; do
    echo "k8stools: building $c $version into $out (once; cached by version)" >&2
    start=$(date +%s)
    # Written under a temporary name first: an interrupted build never leaves a broken binary.
    CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/.$c.tmp" "k8s.io/kubernetes/cmd/$c"
    mv "$out/.$c.tmp" "$out/$c"
    echo "k8stools: $c built in $(( $(date +%s) - start ))s" >&2
  done
fi
echo "$out"
